//! The batch log (`game_batch_log`): a tick's batch made durable as one row, applied to
//! the session and event tables afterwards. The plain body (version 1) is documented in
//! the migration `20261128000001_game_batch_log.sql`; bodies are written compressed
//! (version 2, migration `20261129000001_game_batch_log_lz4.sql`), and both are read.
//! Saves are in the binary form the tick writes (session flag 4, migration
//! `20261130000001_game_batch_log_binary_saves.sql`) or, in older rows, JSON (flag 2).
//! An ended session's final progression follows its save (flag 8, migration
//! `20261207000001_game_sessions_final_view.sql`).

use uuid::Uuid;

use super::{Batch, EventWrite, Save, SessionWrite};
use crate::StoreError;

/// A plain body.
const VERSION: u8 = 1;
/// A plain body compressed: `2 · plain length u32 · LZ4 block of the plain body`.
const VERSION_LZ4: u8 = 2;
/// The largest plain body a compressed one may claim (a bound for corrupt rows).
const MAX_PLAIN: usize = 256 << 20;
const ENDED: u8 = 1;
/// A JSON save follows.
const HAS_SAVE: u8 = 2;
/// A binary save (`domain::narrative::save_bin`) follows.
const HAS_BINARY_SAVE: u8 = 4;
/// A final view (UTF-8 JSON) follows, after the save if any.
const HAS_FINAL_VIEW: u8 = 8;

fn put_len(out: &mut Vec<u8>, n: usize) -> Result<(), StoreError> {
    let n = u32::try_from(n).map_err(|_| StoreError::Corrupt("batch part too long".into()))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// [`encode_into`] into new buffers.
#[cfg(test)]
pub(crate) fn encode(batch: &Batch) -> Result<Vec<u8>, StoreError> {
    let (mut plain, mut body) = (Vec::new(), Vec::new());
    encode_into(batch, &mut plain, &mut body)?;
    Ok(body)
}

/// Encodes a batch as a compressed log body into `body`, with `plain` as scratch space:
/// both are cleared first and keep their capacity, so a writer that keeps them
/// allocates nothing per batch. Compressed, a body is smaller (its saves and events
/// repeat the same scene, node and variable names), and a smaller row is fewer
/// TOAST chunks and less WAL to write and flush on the acknowledgement path
/// (compressing costs a small fraction of what that saves).
pub(crate) fn encode_into(
    batch: &Batch,
    plain: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<(), StoreError> {
    encode_plain_into(batch, plain)?;
    let len = u32::try_from(plain.len())
        .ok()
        .filter(|&n| n as usize <= MAX_PLAIN)
        .ok_or_else(|| StoreError::Corrupt("game batch too large to log".into()))?;
    let bound = lz4_flex::block::get_maximum_output_size(plain.len());
    body.clear();
    body.resize(5 + bound, 0);
    body[0] = VERSION_LZ4;
    body[1..5].copy_from_slice(&len.to_be_bytes());
    let n = lz4_flex::block::compress_into(plain, &mut body[5..])
        .map_err(|e| StoreError::Corrupt(format!("compressing a game batch: {e}")))?;
    body.truncate(5 + n);
    Ok(())
}

/// [`encode_plain_into`] into a new buffer.
#[cfg(test)]
fn encode_plain(batch: &Batch) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    encode_plain_into(batch, &mut out)?;
    Ok(out)
}

/// Encodes a batch as a plain (version 1) log body into `out` (cleared first).
fn encode_plain_into(batch: &Batch, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let size = 13
        + batch
            .sessions
            .iter()
            .map(|s| {
                29 + s.save.as_ref().map_or(0, |j| 4 + j.len())
                    + s.final_view.as_ref().map_or(0, |j| 4 + j.len())
            })
            .sum::<usize>()
        + batch
            .events
            .iter()
            .map(|e| 36 + e.event.len())
            .sum::<usize>()
        + batch.trim.len() * 24;
    out.clear();
    out.reserve(size);
    out.push(VERSION);
    put_len(out, batch.sessions.len())?;
    for s in &batch.sessions {
        out.extend_from_slice(s.id.as_bytes());
        let (has, bytes) = match &s.save {
            None => (0, &[][..]),
            Some(Save::Json(json)) => (HAS_SAVE, json.as_bytes()),
            Some(Save::Binary(bin)) => (HAS_BINARY_SAVE, &bin[..]),
        };
        let last = if s.final_view.is_some() {
            HAS_FINAL_VIEW
        } else {
            0
        };
        out.push(if s.ended { ENDED } else { 0 } | has | last);
        out.extend_from_slice(&s.next_seq.to_be_bytes());
        if has != 0 {
            put_len(out, bytes.len())?;
            out.extend_from_slice(bytes);
        }
        if let Some(view) = &s.final_view {
            put_len(out, view.len())?;
            out.extend_from_slice(view.as_bytes());
        }
    }
    put_len(out, batch.events.len())?;
    for e in &batch.events {
        out.extend_from_slice(e.session.as_bytes());
        out.extend_from_slice(&e.seq.to_be_bytes());
        out.extend_from_slice(&e.at_ms.to_be_bytes());
        put_len(out, e.event.len())?;
        out.extend_from_slice(&e.event);
    }
    put_len(out, batch.trim.len())?;
    for (session, keep_from) in &batch.trim {
        out.extend_from_slice(session.as_bytes());
        out.extend_from_slice(&keep_from.to_be_bytes());
    }
    Ok(())
}

/// Reads a log body, refusing anything malformed (never panics, never allocates more
/// than the body's own size).
struct Reader<'a> {
    bytes: &'a [u8],
    id: i64,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("game batch log row {}: {what}", self.id))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(self.corrupt(&format!("truncated {what}")));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], StoreError> {
        let b = self.take(N, what)?;
        b.try_into().map_err(|_| self.corrupt(what))
    }

    fn u8(&mut self, what: &str) -> Result<u8, StoreError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i64(&mut self, what: &str) -> Result<i64, StoreError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn len(&mut self, what: &str) -> Result<usize, StoreError> {
        Ok(u32::from_be_bytes(self.array(what)?) as usize)
    }

    fn uuid(&mut self, what: &str) -> Result<Uuid, StoreError> {
        Ok(Uuid::from_bytes(self.array(what)?))
    }

    /// A count of items each at least `min` bytes long, checked against what is left.
    fn count(&mut self, min: usize, what: &str) -> Result<usize, StoreError> {
        let n = self.len(what)?;
        if n.saturating_mul(min) > self.bytes.len() {
            return Err(self.corrupt(&format!("{what}: count {n} exceeds the body")));
        }
        Ok(n)
    }
}

/// Decodes a log body, plain or compressed (row `id`, for error messages).
pub(crate) fn decode(id: i64, bytes: &[u8]) -> Result<Batch, StoreError> {
    let mut r = Reader { bytes, id };
    match r.u8("version")? {
        VERSION => decode_plain(id, bytes),
        VERSION_LZ4 => {
            let len = r.len("plain length")?;
            // An LZ4 block expands at most about 255-fold: a larger claim (with some
            // slack) is corruption, and is refused before anything is allocated for it.
            if len > MAX_PLAIN || len > r.bytes.len().saturating_mul(256).saturating_add(1024) {
                return Err(r.corrupt(&format!("plain length {len} exceeds the body")));
            }
            let mut plain = vec![0u8; len];
            match lz4_flex::block::decompress_into(r.bytes, &mut plain) {
                Ok(n) if n == len => {}
                Ok(n) => return Err(r.corrupt(&format!("decompressed {n} bytes, not {len}"))),
                Err(e) => return Err(r.corrupt(&format!("cannot decompress: {e}"))),
            }
            if plain.first() != Some(&VERSION) {
                return Err(r.corrupt("the compressed body is not a plain body"));
            }
            decode_plain(id, &plain)
        }
        version => Err(r.corrupt(&format!("unknown format version {version}"))),
    }
}

/// Decodes a plain (version 1) log body.
fn decode_plain(id: i64, bytes: &[u8]) -> Result<Batch, StoreError> {
    let mut r = Reader { bytes, id };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.corrupt(&format!("unknown format version {version}")));
    }
    let n = r.count(25, "sessions")?;
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.uuid("session id")?;
        let flags = r.u8("session flags")?;
        let next_seq = r.i64("next_seq")?;
        if flags & !(ENDED | HAS_SAVE | HAS_BINARY_SAVE | HAS_FINAL_VIEW) != 0
            || flags & (HAS_SAVE | HAS_BINARY_SAVE) == HAS_SAVE | HAS_BINARY_SAVE
        {
            return Err(r.corrupt(&format!("session flags {flags:#04x}")));
        }
        let save = if flags & (HAS_SAVE | HAS_BINARY_SAVE) != 0 {
            let len = r.len("save length")?;
            let bytes = r.take(len, "save")?;
            Some(if flags & HAS_SAVE != 0 {
                Save::Json(
                    std::str::from_utf8(bytes)
                        .map_err(|_| r.corrupt("save is not UTF-8"))?
                        .to_owned(),
                )
            } else {
                Save::Binary(bytes.to_vec())
            })
        } else {
            None
        };
        let final_view = if flags & HAS_FINAL_VIEW != 0 {
            let len = r.len("final view length")?;
            let bytes = r.take(len, "final view")?;
            Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| r.corrupt("final view is not UTF-8"))?
                    .to_owned(),
            )
        } else {
            None
        };
        sessions.push(SessionWrite {
            id,
            save,
            ended: flags & ENDED != 0,
            final_view,
            next_seq,
        });
    }
    let n = r.count(36, "events")?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let session = r.uuid("event session")?;
        let seq = r.i64("event seq")?;
        let at_ms = r.i64("event time")?;
        let len = r.len("event length")?;
        let event = bytes::Bytes::copy_from_slice(r.take(len, "event")?);
        events.push(EventWrite {
            session,
            seq,
            at_ms,
            event,
        });
    }
    let n = r.count(24, "trims")?;
    let mut trim = Vec::with_capacity(n);
    for _ in 0..n {
        trim.push((r.uuid("trim session")?, r.i64("trim bound")?));
    }
    if !r.bytes.is_empty() {
        return Err(r.corrupt(&format!("{} trailing bytes", r.bytes.len())));
    }
    Ok(Batch {
        sessions,
        events,
        trim,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn batch() -> Batch {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(u128::MAX));
        Batch {
            sessions: vec![
                SessionWrite {
                    id: a,
                    save: Some(Save::Json("{\"version\":1,\"é\":\"ü\"}".into())),
                    ended: false,
                    final_view: None,
                    next_seq: 7,
                },
                SessionWrite {
                    id: b,
                    save: None,
                    ended: true,
                    final_view: Some("{\"xp\":20,\"é\":[]}".into()),
                    next_seq: i64::MAX,
                },
            ],
            events: vec![
                EventWrite {
                    session: a,
                    seq: 5,
                    at_ms: -3,
                    event: vec![1, 2, 3].into(),
                },
                EventWrite {
                    session: a,
                    seq: 6,
                    at_ms: 40,
                    event: Vec::new().into(),
                },
            ],
            trim: vec![(b, 12)],
        }
    }

    fn same(x: &Batch, y: &Batch) -> bool {
        format!("{x:?}") == format!("{y:?}")
    }

    /// Why row 9 with `body` is refused.
    fn error(body: &[u8]) -> String {
        decode(9, body).unwrap_err().to_string()
    }

    /// Every truncation of `body` is refused, naming the row.
    fn every_truncation_is_an_error(body: &[u8]) {
        for cut in 0..body.len() {
            let err = error(&body[..cut]);
            assert!(err.contains("game batch log row 9"), "{err}");
        }
    }

    /// A batch like a busy tick's: many saves sharing their keys.
    fn big_batch() -> Batch {
        let sessions = (0..100u128)
            .map(|i| SessionWrite {
                id: Uuid::from_u128(i),
                save: Some(if i % 2 == 0 {
                    Save::Json(format!(
                        "{{\"version\":1,\"stack\":[{{\"scene\":\"intro\",\"node\":\"n{i}\"}}],\"progress\":{{\"xp\":{i}}}}}"
                    ))
                } else {
                    Save::Binary(format!("binary intro n{i} xp {i}").into_bytes())
                }),
                ended: i % 3 == 0,
                final_view: (i % 3 == 0).then(|| format!("{{\"xp\":{i},\"level\":1}}")),
                next_seq: i as i64,
            })
            .collect();
        Batch {
            sessions,
            ..batch()
        }
    }

    #[test]
    fn bodies_round_trip_compressed_and_plain() {
        // As compressible as a body gets: LZ4's largest expansion must still decode.
        let mut repetitive = batch();
        repetitive.sessions[0].save = Some(Save::Json("a".repeat(1 << 20)));
        for b in [batch(), big_batch(), Batch::default(), repetitive] {
            let body = encode(&b).unwrap();
            assert_eq!(body[0], VERSION_LZ4);
            assert!(same(&decode(1, &body).unwrap(), &b));
            // Rows written before compression still read.
            let plain = encode_plain(&b).unwrap();
            assert_eq!(plain[0], VERSION);
            assert!(same(&decode(2, &plain).unwrap(), &b));
        }
        let big = big_batch();
        let (packed, plain) = (encode(&big).unwrap(), encode_plain(&big).unwrap());
        assert!(
            packed.len() * 3 < plain.len(),
            "{} of {} bytes",
            packed.len(),
            plain.len()
        );
    }

    #[test]
    fn corrupt_compressed_bodies_are_errors() {
        let body = encode(&big_batch()).unwrap();
        every_truncation_is_an_error(&body);
        // A claimed plain length beyond what the body could expand to is refused
        // without allocating it.
        let mut huge = body.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(error(&huge).contains("exceeds"));
        let mut short = body.clone();
        let len = u32::from_be_bytes(short[1..5].try_into().unwrap());
        short[1..5].copy_from_slice(&(len - 1).to_be_bytes());
        assert!(decode(9, &short).is_err());
        let mut flipped = body;
        for b in flipped[5..].iter_mut().step_by(7) {
            *b ^= 0x5a;
        }
        assert!(decode(9, &flipped).is_err());
        // A compressed body must hold a plain one, not another compressed one.
        let inner = encode(&batch()).unwrap();
        let mut nested = vec![VERSION_LZ4];
        nested.extend_from_slice(&(inner.len() as u32).to_be_bytes());
        nested.extend_from_slice(&lz4_flex::block::compress(&inner));
        assert!(error(&nested).contains("not a plain body"));
    }

    #[test]
    fn every_truncation_and_bad_header_is_an_error() {
        let body = encode_plain(&batch()).unwrap();
        every_truncation_is_an_error(&body);
        let mut long = body.clone();
        long.push(0);
        assert!(error(&long).contains("trailing"));
        let mut version = body.clone();
        version[0] = 3;
        assert!(error(&version).contains("version 3"));
        // Session flags: an unknown bit, or both kinds of save at once.
        for flags in [16, 0x82, HAS_SAVE | HAS_BINARY_SAVE] {
            let mut bad = body.clone();
            bad[1 + 4 + 16] = flags;
            assert!(error(&bad).contains("session flags"), "{flags:#x}");
        }
        // A huge count is refused before anything is allocated for it.
        let mut count = body;
        count[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(error(&count).contains("exceeds"));
    }
}
