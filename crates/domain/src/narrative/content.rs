//! A loaded, validated content set (world config + scenes) with lookup indexes.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::scene::{Edge, Node, Scene};
use super::world::WorldConfig;

/// A small, fast, deterministic hasher (FxHash) for id lookups. Never used for ordering
/// outputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // Final avalanche (SplitMix64 mixer) so that keys differing only in high bytes
        // still spread over the low bits hash tables index with.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Clone, Debug, Default)]
struct SceneIndex {
    nodes: FxHashMap<String, usize>,
    edges: FxHashMap<String, usize>,
    out: FxHashMap<String, Vec<usize>>,
}

/// All narrative content. Build with [`Content::new`]; the `content` crate loads it from disk.
#[derive(Clone, Debug)]
pub struct Content {
    /// World config.
    pub world: WorldConfig,
    /// Scenes by id.
    pub scenes: BTreeMap<String, Scene>,
    /// A stable hash of the content, stored in saves.
    pub version: String,
    index: FxHashMap<String, SceneIndex>,
}

impl Content {
    /// Builds indexes. Does not validate (see the `content` crate).
    pub fn new(world: WorldConfig, scenes: impl IntoIterator<Item = Scene>) -> Self {
        let scenes: BTreeMap<String, Scene> =
            scenes.into_iter().map(|s| (s.id.clone(), s)).collect();
        let mut index = FxHashMap::default();
        for (id, s) in &scenes {
            let mut ix = SceneIndex::default();
            for (i, n) in s.nodes.iter().enumerate() {
                ix.nodes.entry(n.id.clone()).or_insert(i);
            }
            for (i, e) in s.edges.iter().enumerate() {
                ix.edges.entry(e.id.clone()).or_insert(i);
                ix.out.entry(e.from.clone()).or_default().push(i);
            }
            index.insert(id.clone(), ix);
        }
        let json = serde_json::to_string(&(&world, &scenes)).unwrap_or_default();
        let version = format!("{:016x}", fnv1a(json.as_bytes()));
        Self {
            world,
            scenes,
            version,
            index,
        }
    }

    /// A scene.
    pub fn scene(&self, scene: &str) -> Option<&Scene> {
        self.scenes.get(scene)
    }

    /// A node.
    pub fn node(&self, scene: &str, node: &str) -> Option<&Node> {
        let i = *self.index.get(scene)?.nodes.get(node)?;
        self.scenes.get(scene)?.nodes.get(i)
    }

    /// An edge.
    pub fn edge(&self, scene: &str, edge: &str) -> Option<&Edge> {
        let i = *self.index.get(scene)?.edges.get(edge)?;
        self.scenes.get(scene)?.edges.get(i)
    }

    /// Outgoing edges of a node, in file order.
    pub fn out_edges<'a>(
        &'a self,
        scene: &str,
        node: &str,
    ) -> impl Iterator<Item = &'a Edge> + use<'a> {
        let s = self.scenes.get(scene);
        let ix = self.index.get(scene).and_then(|ix| ix.out.get(node));
        ix.into_iter()
            .flatten()
            .filter_map(move |i| s.and_then(|s| s.edges.get(*i)))
    }
}

/// FNV-1a 64-bit hash (stable across runs and platforms).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
