//! Shared by the media fuzz targets: sniff, probe, and what every probe holds to.

use generation::media::{MAX_DIMENSION, MAX_DURATION_MS, Probe, Sniffed, probe, sniff};
use generation::model::MediaType;

/// Sniffs `data` and probes it as what it sniffs as, then as `mime` (so inputs whose
/// magic bytes a mutation broke still reach that format's parser).
pub fn sniff_and_probe(data: &[u8], mime: Option<&'static str>) {
    if let Some(k) = sniff(data) {
        check(&probe(data, &k));
    }
    if let Some(mime) = mime {
        let k = Sniffed {
            media_type: MediaType::Image,
            mime,
            ext: "bin",
        };
        check(&probe(data, &k));
    }
}

/// Only values that fit the asset columns: sizes in 1..=MAX_DIMENSION, both or neither;
/// durations up to MAX_DURATION_MS.
fn check(p: &Probe) {
    assert_eq!(p.width.is_some(), p.height.is_some());
    for v in [p.width, p.height].into_iter().flatten() {
        assert!((1..=MAX_DIMENSION).contains(&v));
    }
    assert!(p.duration_ms.is_none_or(|d| d <= MAX_DURATION_MS));
    assert!(p.width_i32().is_some_and(|w| w > 0) == p.width.is_some());
    assert!(p.height_i32().is_some_and(|h| h > 0) == p.height.is_some());
    assert!(p.duration_ms_i64().is_some_and(|d| d >= 0) == p.duration_ms.is_some());
}
