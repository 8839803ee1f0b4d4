//! A compact binary form of [`SessionSave`], for the game state batch log.
//!
//! The tick writes a save for every session it touched, on the acknowledgement path;
//! as JSON that was about a fifth of the tick (string escaping, map formatting). This
//! form carries the same fields with no field names, no escaping and variable-length
//! integers, and decodes back into the same [`SessionSave`] (the tables keep JSON).
//!
//! Layout (all counts and unsigned integers are LEB128 varints, signed ones zigzag
//! varints, strings a count of UTF-8 bytes then the bytes):
//!
//! ```text
//! save      = FORMAT:u8 version content_version rng:u64le frames elapsed wait
//!             vars visits progress cooldowns [playback]
//! frames    = n (scene node args){n}              the last frame is the position
//! args/vars = n (name value){n}                   names ascending
//! value     = 0 bool:u8 | 1 int | 2 str | 3 n value{n}
//! wait      = 0 n edge{n} | 1 round hits | 2                (2: waiting for continue)
//! visits    = n (scene count){n} n (scene n (node count){n}){n}
//! progress  = stats items quests xp level unlocked
//! quests    = n (id status:u8 n (objective count){n}){n}
//! cooldowns = n (key remaining_ms){n}
//! playback  = media step                          only with FORMAT 2
//! ```
//!
//! A save whose playback is zero (every save before media features) is written with
//! FORMAT 1 and no playback; one with a media index or a step with FORMAT 2. Both decode.
//!
//! Decoding never panics, allocates no more than the input's size allows, and refuses
//! trailing bytes, unsorted or duplicate map keys, and lists nested deeper than
//! [`MAX_DEPTH`].

use std::collections::{BTreeMap, BTreeSet};

use super::expr::Value;
use super::rng::Rng;
use super::save::{Frame, SaveError, SavedPlayback, SavedWait, SessionSave};
use super::state::{Progress, QuestState, QuestStatus, Vars, Visits};

/// The layout's version (first byte) of a save without playback state.
pub const FORMAT: u8 = 1;
/// The layout's version of a save carrying playback state (appended after cooldowns).
pub const FORMAT_PLAYBACK: u8 = 2;

/// Deepest list nesting a decoded value may have.
pub const MAX_DEPTH: usize = 32;

/// A save borrowed from wherever the state lives (the simulation's components), so
/// it is encoded without copying it into a [`SessionSave`] first.
#[derive(Debug, Clone, Copy)]
pub struct SaveRef<'a> {
    /// [`SessionSave::version`].
    pub version: u32,
    /// [`SessionSave::content_version`].
    pub content_version: &'a str,
    /// PRNG state.
    pub rng: Rng,
    /// The callers' frames, bottom first.
    pub callers: &'a [Frame],
    /// The current position: scene, node and arguments (the top frame).
    pub top: (&'a str, &'a str, &'a BTreeMap<String, Value>),
    /// Time spent in the current node (ms).
    pub elapsed_in_node_ms: i64,
    /// What the session waits for.
    pub wait: &'a SavedWait,
    /// Variables.
    pub vars: &'a Vars,
    /// Visit counts.
    pub visits: &'a Visits,
    /// Progression.
    pub progress: &'a Progress,
    /// Remaining cooldowns (ms) by `scene/edge`, ascending and all positive.
    pub cooldowns: &'a BTreeMap<&'a str, i64>,
    /// The current node's media state.
    pub playback: SavedPlayback,
}

impl SessionSave {
    /// This save in the binary form (appended to `out`). The cooldowns are copied into
    /// a borrowed map; the tick encodes from its components with [`encode`] instead.
    pub fn encode_binary(&self, out: &mut Vec<u8>) -> Result<(), SaveError> {
        let Some((top, callers)) = self.stack.split_last() else {
            return Err(SaveError::Malformed("empty call stack".into()));
        };
        let cooldowns = self
            .cooldowns
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        encode(
            &SaveRef {
                version: self.version,
                content_version: &self.content_version,
                rng: self.rng,
                callers,
                top: (&top.scene, &top.node, &top.args),
                elapsed_in_node_ms: self.elapsed_in_node_ms,
                wait: &self.wait,
                vars: &self.vars,
                visits: &self.visits,
                progress: &self.progress,
                cooldowns: &cooldowns,
                playback: self.playback,
            },
            out,
        );
        Ok(())
    }

    /// Decodes the binary form.
    pub fn decode_binary(bytes: &[u8]) -> Result<SessionSave, SaveError> {
        decode(bytes)
    }
}

fn uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn int(out: &mut Vec<u8>, n: i64) {
    uint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn string(out: &mut Vec<u8>, s: &str) {
    uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => {
            out.push(0);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(1);
            int(out, *i);
        }
        Value::Str(s) => {
            out.push(2);
            string(out, s);
        }
        Value::List(items) => {
            out.push(3);
            uint(out, items.len() as u64);
            for item in items {
                value(out, item);
            }
        }
    }
}

fn values(out: &mut Vec<u8>, map: &BTreeMap<String, Value>) {
    uint(out, map.len() as u64);
    for (k, v) in map {
        string(out, k);
        value(out, v);
    }
}

fn counts(out: &mut Vec<u8>, map: &BTreeMap<String, u32>) {
    uint(out, map.len() as u64);
    for (k, v) in map {
        string(out, k);
        uint(out, u64::from(*v));
    }
}

fn status_tag(s: QuestStatus) -> u8 {
    match s {
        QuestStatus::Inactive => 0,
        QuestStatus::Active => 1,
        QuestStatus::Completed => 2,
        QuestStatus::Failed => 3,
        QuestStatus::Hidden => 4,
    }
}

/// Appends `save` in the binary form to `out`.
pub fn encode(save: &SaveRef<'_>, out: &mut Vec<u8>) {
    let with_playback = !save.playback.is_default();
    out.push(if with_playback {
        FORMAT_PLAYBACK
    } else {
        FORMAT
    });
    uint(out, u64::from(save.version));
    string(out, save.content_version);
    out.extend_from_slice(&save.rng.0.to_le_bytes());
    uint(out, save.callers.len() as u64 + 1);
    for f in save.callers {
        string(out, &f.scene);
        string(out, &f.node);
        values(out, &f.args);
    }
    let (scene, node, args) = save.top;
    string(out, scene);
    string(out, node);
    values(out, args);
    int(out, save.elapsed_in_node_ms);
    match save.wait {
        SavedWait::Choices { offered } => {
            out.push(0);
            uint(out, offered.len() as u64);
            for e in offered {
                string(out, e);
            }
        }
        SavedWait::MiniGame { round, hits } => {
            out.push(1);
            uint(out, u64::from(*round));
            uint(out, u64::from(*hits));
        }
        SavedWait::Continue => out.push(2),
    }
    values(out, &save.vars.0);
    counts(out, &save.visits.scenes);
    uint(out, save.visits.nodes.len() as u64);
    for (scene, nodes) in &save.visits.nodes {
        string(out, scene);
        counts(out, nodes);
    }
    let p = save.progress;
    uint(out, p.stats.len() as u64);
    for (k, v) in &p.stats {
        string(out, k);
        int(out, *v);
    }
    counts(out, &p.items);
    uint(out, p.quests.len() as u64);
    for (k, q) in &p.quests {
        string(out, k);
        out.push(status_tag(q.status));
        counts(out, &q.objectives);
    }
    int(out, p.xp);
    uint(out, u64::from(p.level));
    uint(out, p.unlocked.len() as u64);
    for s in &p.unlocked {
        string(out, s);
    }
    uint(out, save.cooldowns.len() as u64);
    for (k, v) in save.cooldowns {
        string(out, k);
        int(out, *v);
    }
    if with_playback {
        uint(out, u64::from(save.playback.media));
        uint(out, u64::from(save.playback.step));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

fn bad(what: impl std::fmt::Display) -> SaveError {
    SaveError::Malformed(format!("binary save: {what}"))
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &str) -> Result<u8, SaveError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| bad(format!("truncated {what}")))?;
        self.bytes = rest;
        Ok(b)
    }

    fn uint(&mut self, what: &str) -> Result<u64, SaveError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(bad(format!("{what} overflows")));
            }
            n |= part << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(bad(format!("{what} overflows")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, SaveError> {
        u32::try_from(self.uint(what)?).map_err(|_| bad(format!("{what} out of range")))
    }

    fn int(&mut self, what: &str) -> Result<i64, SaveError> {
        let n = self.uint(what)?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A count of items, each at least one byte long: never more than what is left.
    fn count(&mut self, what: &str) -> Result<usize, SaveError> {
        let n = self.uint(what)?;
        if n > self.bytes.len() as u64 {
            return Err(bad(format!("{what}: count {n} exceeds the save")));
        }
        Ok(n as usize)
    }

    fn str(&mut self, what: &str) -> Result<&'a str, SaveError> {
        let n = self.count(what)?;
        let (s, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        std::str::from_utf8(s).map_err(|_| bad(format!("{what} is not UTF-8")))
    }

    fn string(&mut self, what: &str) -> Result<String, SaveError> {
        self.str(what).map(str::to_owned)
    }

    fn value(&mut self, depth: usize) -> Result<Value, SaveError> {
        Ok(match self.byte("value")? {
            0 => match self.byte("bool")? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(bad(format!("bool {b}"))),
            },
            1 => Value::Int(self.int("int")?),
            2 => Value::Str(self.string("string")?),
            3 => {
                if depth >= MAX_DEPTH {
                    return Err(bad("lists nested too deeply"));
                }
                let n = self.count("list")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            t => return Err(bad(format!("value tag {t}"))),
        })
    }

    /// A map with keys in strictly ascending order (as encoded from a `BTreeMap`).
    fn map<T>(
        &mut self,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, SaveError>,
    ) -> Result<BTreeMap<String, T>, SaveError> {
        let n = self.count(what)?;
        let mut map = BTreeMap::new();
        let mut last: Option<&str> = None;
        for _ in 0..n {
            let k = self.str(what)?;
            if last.is_some_and(|l| l >= k) {
                return Err(bad(format!("{what}: keys out of order at {k:?}")));
            }
            last = Some(k);
            let v = item(self)?;
            map.insert(k.to_owned(), v);
        }
        Ok(map)
    }
}

/// Decodes a save written by [`encode`] ([`SessionSave::decode_binary`]).
fn decode(bytes: &[u8]) -> Result<SessionSave, SaveError> {
    let mut r = Reader { bytes };
    let format = r.byte("format")?;
    if format != FORMAT && format != FORMAT_PLAYBACK {
        return Err(bad(format!("unknown format {format}")));
    }
    let version = r.u32("version")?;
    let content_version = r.string("content version")?;
    let mut rng = [0u8; 8];
    for b in &mut rng {
        *b = r.byte("rng")?;
    }
    let n = r.count("stack")?;
    if n == 0 {
        return Err(bad("empty call stack"));
    }
    let mut stack = Vec::with_capacity(n);
    for _ in 0..n {
        stack.push(Frame {
            scene: r.string("scene")?,
            node: r.string("node")?,
            args: r.map("args", |r| r.value(0))?,
        });
    }
    let elapsed_in_node_ms = r.int("elapsed")?;
    let wait = saved_wait(&mut r)?;
    let vars = Vars(r.map("vars", |r| r.value(0))?);
    let visits = Visits {
        scenes: r.map("scene visits", |r| r.u32("visits"))?,
        nodes: r.map("node visits", |r| r.map("node visits", |r| r.u32("visits")))?,
    };
    let stats = r.map("stats", |r| r.int("stat"))?;
    let items = r.map("items", |r| r.u32("item count"))?;
    let quests = r.map("quests", quest_state)?;
    let xp = r.int("xp")?;
    let level = r.u32("level")?;
    let unlocked: BTreeSet<String> = r.map("unlocked", |_| Ok(()))?.into_keys().collect();
    let cooldowns = r.map("cooldowns", |r| r.int("cooldown"))?;
    let playback = match format {
        FORMAT_PLAYBACK => SavedPlayback {
            media: r.u32("media")?,
            step: r.u32("step")?,
        },
        _ => SavedPlayback::default(),
    };
    if !r.bytes.is_empty() {
        return Err(bad(format!("{} trailing bytes", r.bytes.len())));
    }
    Ok(SessionSave {
        version,
        content_version,
        rng: Rng(u64::from_le_bytes(rng)),
        stack,
        elapsed_in_node_ms,
        wait,
        vars,
        visits,
        progress: Progress {
            stats,
            items,
            quests,
            xp,
            level,
            unlocked,
        },
        cooldowns,
        playback,
    })
}

/// What the session waited for (tag 0: offered choices, 1: a mini-game round).
fn saved_wait(r: &mut Reader<'_>) -> Result<SavedWait, SaveError> {
    Ok(match r.byte("wait")? {
        0 => {
            let n = r.count("offered")?;
            let mut offered = Vec::with_capacity(n);
            for _ in 0..n {
                offered.push(r.string("edge")?);
            }
            SavedWait::Choices { offered }
        }
        1 => SavedWait::MiniGame {
            round: r.u32("round")?,
            hits: r.u32("hits")?,
        },
        2 => SavedWait::Continue,
        t => return Err(bad(format!("wait tag {t}"))),
    })
}

/// One quest: its status tag, then its objectives' progress.
fn quest_state(r: &mut Reader<'_>) -> Result<QuestState, SaveError> {
    let status = match r.byte("quest status")? {
        0 => QuestStatus::Inactive,
        1 => QuestStatus::Active,
        2 => QuestStatus::Completed,
        3 => QuestStatus::Failed,
        4 => QuestStatus::Hidden,
        t => return Err(bad(format!("quest status {t}"))),
    };
    Ok(QuestState {
        status,
        objectives: r.map("objectives", |r| r.u32("objective"))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A save with every part filled, nested lists and extreme integers included.
    fn full() -> SessionSave {
        let json = r#"{"version":1,"content_version":"4cbf8d66f77b511f","rng":18446744073709551615,"stack":[{"scene":"gallery","node":"to_vault"},{"scene":"vault","node":"door","args":{"alarm":0,"who":"mara","deep":[[1,2],[]]}}],"elapsed_in_node_ms":-150,"wait":{"type":"choices","offered":["try_crack","back_off"]},"vars":{"approach":"charm","clues":["patrol","é ü"],"met_mara":true,"min":-9223372036854775808,"max":9223372036854775807},"visits":{"scenes":{"gallery":1,"vault":4294967295},"nodes":{"gallery":{"arrive":1,"plan":2},"vault":{"door":1}}},"progress":{"stats":{"courage.player.value":-4,"relationship.mara.trust":5},"items":{"coin":2,"keycard":1},"quests":{"heist":{"status":"active","objectives":{"get_keycard":1}},"side":{"status":"hidden"}},"xp":20,"level":3,"unlocked":["annex","roof"]},"cooldowns":{"gallery/go_study":9750}}"#;
        serde_json::from_str(json).unwrap()
    }

    fn minimal() -> SessionSave {
        let json = r#"{"version":1,"content_version":"","rng":0,"stack":[{"scene":"s","node":"n"}],"elapsed_in_node_ms":0,"wait":{"type":"mini_game","round":1,"hits":0},"vars":{},"visits":{},"progress":{"xp":0,"level":1}}"#;
        serde_json::from_str(json).unwrap()
    }

    fn bytes(save: &SessionSave) -> Vec<u8> {
        let mut out = Vec::new();
        save.encode_binary(&mut out).unwrap();
        out
    }

    #[test]
    fn saves_round_trip_and_are_smaller_than_json() {
        for save in [full(), minimal()] {
            let b = bytes(&save);
            assert_eq!(SessionSave::decode_binary(&b).unwrap(), save);
            assert!(b.len() * 2 < serde_json::to_vec(&save).unwrap().len());
        }
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_an_error() {
        let b = bytes(&full());
        for cut in 0..b.len() {
            let err = SessionSave::decode_binary(&b[..cut]).unwrap_err();
            assert!(matches!(err, SaveError::Malformed(_)), "{err}");
        }
        let mut long = b;
        long.push(0);
        assert!(
            SessionSave::decode_binary(&long)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
    }

    /// A save with a media pick and a step waiting for `continue` is written with
    /// FORMAT 2 and decodes back exactly; one without keeps FORMAT 1.
    #[test]
    fn playback_state_round_trips_and_old_format_stays() {
        let mut save = full();
        assert_eq!(bytes(&save)[0], FORMAT);
        save.playback = SavedPlayback { media: 2, step: 1 };
        save.wait = SavedWait::Continue;
        let b = bytes(&save);
        assert_eq!(b[0], FORMAT_PLAYBACK);
        assert_eq!(SessionSave::decode_binary(&b).unwrap(), save);
        let json = serde_json::to_string(&save).unwrap();
        assert!(
            json.contains(r#""playback":{"media":2,"step":1}"#),
            "{json}"
        );
        assert!(json.contains(r#""wait":{"type":"continue"}"#), "{json}");
        assert_eq!(serde_json::from_str::<SessionSave>(&json).unwrap(), save);
    }

    #[test]
    fn corrupt_saves_are_errors_without_panics() {
        let b = bytes(&full());
        // Every byte flipped in turn: an error or some other valid save, never a panic.
        for i in 0..b.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut c = b.clone();
                c[i] ^= flip;
                let _ = SessionSave::decode_binary(&c);
            }
        }
        // Unknown format, a huge count, an overlong varint, a bad tag.
        let err = |bytes: &[u8]| SessionSave::decode_binary(bytes).unwrap_err().to_string();
        assert!(err(&[3]).contains("unknown format 3"));
        assert!(err(&[FORMAT, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]).contains("exceeds"));
        assert!(
            err(&[
                FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .contains("overflows")
        );
        assert!(err(&[FORMAT, 0x80, 0x80, 0x80, 0x80, 0x10]).contains("out of range"));
        let mut tag = bytes(&minimal());
        // The minimal save ends with the wait (tag, round, hits) and ten one-byte parts.
        let wait = tag.len() - 13;
        assert_eq!(tag[wait..wait + 3], [1, 1, 0], "the minimal save's wait");
        tag[wait] = 7;
        assert!(err(&tag).contains("wait tag 7"));
    }

    #[test]
    fn map_keys_must_ascend_and_lists_nest_boundedly() {
        let mut dup = minimal();
        dup.vars.0.insert("a".into(), Value::Int(1));
        dup.vars.0.insert("b".into(), Value::Int(2));
        let mut b = bytes(&dup);
        // Rename "b" to "a": the same key twice.
        let at = b.windows(3).position(|w| w == [1, b'b', 1]).unwrap();
        b[at + 1] = b'a';
        assert!(
            SessionSave::decode_binary(&b)
                .unwrap_err()
                .to_string()
                .contains("out of order")
        );
        let mut deep = Value::Int(0);
        for _ in 0..MAX_DEPTH {
            deep = Value::List(vec![deep]);
        }
        let mut ok = minimal();
        ok.vars.0.insert("d".into(), deep.clone());
        assert_eq!(SessionSave::decode_binary(&bytes(&ok)).unwrap(), ok);
        ok.vars.0.insert("d".into(), Value::List(vec![deep]));
        assert!(
            SessionSave::decode_binary(&bytes(&ok))
                .unwrap_err()
                .to_string()
                .contains("nested too deeply")
        );
    }
}
