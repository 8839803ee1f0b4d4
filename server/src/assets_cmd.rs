//! `pixsim-server assets render [--force]`: renders the media files the scenes name
//! (`asset = "assets/…"`, wherever a scene file holds such a path) that do not exist
//! yet, with the local renderer: 640×360, 24 fps, 2 to 4 s, small enough to check in.
//! The prompt is the naming node's id and the file's stem, the seed a hash of the path,
//! so a rerun makes the same bytes. `--force` renders every named file again.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use generation::model::Operation;
use generation::render::{Ffmpeg, RenderSpec, render};
use sha2::{Digest, Sha256};

/// The scene-side prefix of a file in the assets directory.
const PREFIX: &str = "assets/";
/// Width, height and frame rate of demo media.
const SIZE: (u32, u32) = (640, 360);
const FPS: u32 = 24;
/// The constant rate factor: keeps a 4 s clip far under 300 KB.
const CRF: u8 = 27;

/// A media path a scene names, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// As written in the scene, e.g. `assets/vault_door.mp4`.
    pub path: String,
    /// The scene file.
    pub file: PathBuf,
    /// The id of the node (the innermost table with an `id`) holding the path.
    pub node: String,
}

/// Every `assets/…` path in the `.toml` files under `scenes_dir`, first naming per
/// path, in path order.
pub fn named(scenes_dir: &Path) -> anyhow::Result<Vec<Named>> {
    let mut files = Vec::new();
    toml_files(scenes_dir, &mut files)?;
    files.sort();
    let mut found: BTreeMap<String, Named> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let value: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let mut out = Vec::new();
        collect(&value, "", &mut out);
        for (path, node) in out {
            found.entry(path.clone()).or_insert(Named {
                path,
                file: file.clone(),
                node,
            });
        }
    }
    Ok(found.into_values().collect())
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            toml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Strings starting with [`PREFIX`], with the id of the innermost table holding them.
fn collect(v: &toml::Value, node: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) if s.starts_with(PREFIX) => out.push((s.clone(), node.into())),
        toml::Value::Table(t) => {
            let node = t.get("id").and_then(|i| i.as_str()).unwrap_or(node);
            for child in t.values() {
                collect(child, node, out);
            }
        }
        toml::Value::Array(items) => {
            for child in items {
                collect(child, node, out);
            }
        }
        toml::Value::String(_)
        | toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_) => {}
    }
}

/// Where a scene path lives in the assets directory; refuses paths leaving it.
pub fn target(assets_dir: &Path, scene_path: &str) -> anyhow::Result<PathBuf> {
    let rel = Path::new(scene_path.strip_prefix(PREFIX).unwrap_or(scene_path));
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("{scene_path}: not a path inside the assets directory");
    }
    Ok(assets_dir.join(rel))
}

/// The render of one named path: prompt, seed and length follow from it alone.
pub fn spec(named: &Named) -> RenderSpec {
    let digest = Sha256::digest(named.path.as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    let seed = u64::from_le_bytes(seed);
    let stem = Path::new(&named.path)
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_default();
    let secs = 2 + (seed % 3) as u32;
    RenderSpec {
        operation: Operation::TextToVideo,
        prompt: format!("{}: {stem}", named.node),
        seed,
        width: SIZE.0,
        height: SIZE.1,
        fps: FPS,
        frames: secs * FPS,
        fast: false,
        crf: CRF,
        inputs: Vec::new(),
    }
}

/// Renders what is missing (or everything with `force`) into `assets_dir`; returns
/// the files written.
pub fn render_missing(
    scenes_dir: &Path,
    assets_dir: &Path,
    force: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let wanted = named(scenes_dir)?;
    let mut written = Vec::new();
    let mut ff = None;
    for n in &wanted {
        let out = target(assets_dir, &n.path)
            .with_context(|| format!("{} (node {})", n.file.display(), n.node))?;
        if out.exists() && !force {
            println!("{}: exists", n.path);
            continue;
        }
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let still = match ext {
            "mp4" => false,
            "png" => true,
            other => bail!(
                "{} (node {}): {}: cannot render .{other} files (only .mp4 and .png)",
                n.file.display(),
                n.node,
                n.path
            ),
        };
        let ff = match &ff {
            Some(f) => f,
            None => ff.insert(Ffmpeg::locate().context("finding ffmpeg")?),
        };
        let spec = spec(n);
        let clip = render(ff, &spec).with_context(|| format!("rendering {}", n.path))?;
        let seconds = clip.duration_ms() as f64 / 1000.0;
        let (width, height) = (clip.width, clip.height);
        let bytes = if still { clip.poster_png } else { clip.mp4 };
        write_atomically(&out, &bytes)?;
        println!(
            "{}: rendered for node {} of {} ({}x{}, {:.1} s, {:.1} KiB)",
            n.path,
            n.node,
            n.file.display(),
            width,
            height,
            seconds,
            bytes.len() as f64 / 1024.0
        );
        written.push(out);
    }
    if wanted.is_empty() {
        println!(
            "no scene under {} names an assets/ path",
            scenes_dir.display()
        );
    }
    Ok(written)
}

fn write_atomically(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("tmp-render");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("moving into {}", out.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_asset_paths_with_their_node_anywhere_in_a_scene() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            r#"
id = "a"
[[nodes]]
id = "door"
kind = "media"
asset = "assets/door.mp4"
[[nodes]]
id = "hall"
kind = "media"
media = [{ asset = "assets/hall_1.mp4" }, { asset = "assets/door.mp4" }]
[[nodes]]
id = "note"
kind = "dialogue"
lines = [{ text = "assets are nice" }]
"#,
        )
        .unwrap();
        let got: Vec<(String, String)> = named(dir.path())
            .unwrap()
            .into_iter()
            .map(|n| (n.path, n.node))
            .collect();
        assert_eq!(
            got,
            [
                ("assets/door.mp4".to_owned(), "door".to_owned()),
                ("assets/hall_1.mp4".to_owned(), "hall".to_owned()),
            ]
        );
    }

    #[test]
    fn paths_leaving_the_assets_directory_are_refused() {
        let dir = Path::new("/srv/assets");
        assert_eq!(
            target(dir, "assets/doors/red.mp4").unwrap(),
            dir.join("doors/red.mp4")
        );
        for bad in ["assets/../secret.mp4", "assets/", "assets//etc/x.mp4"] {
            assert!(target(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_path_always_renders_the_same_spec() {
        let n = Named {
            path: "assets/vault_door.mp4".into(),
            file: "vault.toml".into(),
            node: "door".into(),
        };
        let (a, b) = (spec(&n), spec(&n));
        assert_eq!((a.seed, a.frames, &a.prompt), (b.seed, b.frames, &b.prompt));
        assert_eq!(a.prompt, "door: vault door");
        assert!((2 * FPS..=4 * FPS).contains(&a.frames));
    }
}
