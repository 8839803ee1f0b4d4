//! Scene media figures for `/metrics`: pre-generation and the wait from node entry to
//! media.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bounds, in seconds, of the wait histograms: from "there at entry" to a slow render.
const WAIT_BOUNDS: [f64; 14] = [
    0.001, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How a first entry into a generation node found its media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Made ahead, ready at entry: a hit.
    Pregenerated,
    /// Made ahead, still rendering at entry (the wait was shortened).
    Pregenerating,
    /// Nothing started before the entry.
    Nothing,
    /// Existing media (an earlier run's asset, or the spec's fallback).
    Existing,
}

/// Counters shared by the media task (writer) and `/metrics` (reader).
#[derive(Debug)]
pub(crate) struct MediaMetrics {
    pub(crate) pregen_jobs: AtomicU64,
    pub(crate) pregen_raised: AtomicU64,
    pub(crate) pregen_cancelled: AtomicU64,
    pub(crate) pregen_credits: AtomicI64,
    /// Credits of media made ahead that no player has entered yet.
    pub(crate) pregen_unused_credits: AtomicI64,
    first: [AtomicU64; 4],
    /// Entry → media, for specs made ahead of their first entry …
    pub(crate) wait_ahead: tick::Histogram,
    /// … and for specs first asked for by an entry.
    pub(crate) wait_on_entry: tick::Histogram,
    /// Per generation node (scene, node): its entries' waits. As many as the content
    /// has generation nodes.
    per_node: Mutex<BTreeMap<(String, String), NodeWaits>>,
}

/// The waits of one node's entries, counted once its media reached them.
#[derive(Debug, Default, Clone, Copy)]
struct NodeWaits {
    entries: u64,
    /// Entries that found no media (waited 1 ms or more).
    waited: u64,
    sum_secs: f64,
}

impl Default for MediaMetrics {
    fn default() -> Self {
        MediaMetrics {
            pregen_jobs: AtomicU64::new(0),
            pregen_raised: AtomicU64::new(0),
            pregen_cancelled: AtomicU64::new(0),
            pregen_credits: AtomicI64::new(0),
            pregen_unused_credits: AtomicI64::new(0),
            first: Default::default(),
            wait_ahead: tick::Histogram::new(&WAIT_BOUNDS),
            wait_on_entry: tick::Histogram::new(&WAIT_BOUNDS),
            per_node: Mutex::new(BTreeMap::new()),
        }
    }
}

impl MediaMetrics {
    pub(crate) fn first_entry(&self, found: Found) {
        self.first[found as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One entry into `scene`/`node` got its media after `wait`.
    pub(crate) fn node_wait(&self, scene: &str, node: &str, wait: Duration) {
        let mut m = self.per_node.lock().unwrap_or_else(|p| p.into_inner());
        let w = m.entry((scene.to_owned(), node.to_owned())).or_default();
        w.entries += 1;
        if wait >= Duration::from_millis(1) {
            w.waited += 1;
        }
        w.sum_secs += wait.as_secs_f64();
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text.
    pub(crate) fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (name, help, v) in [
            (
                "pixsim_pregen_jobs_total",
                "Scene media jobs created ahead of the players (a player came within generation.pregenerate_steps).",
                &self.pregen_jobs,
            ),
            (
                "pixsim_pregen_raised_total",
                "Jobs made ahead that a player's entry raised to the spec's own priority before they started.",
                &self.pregen_raised,
            ),
            (
                "pixsim_pregen_cancelled_total",
                "Jobs made ahead, cancelled before they started because no loaded session could reach their node anymore.",
                &self.pregen_cancelled,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP pixsim_pregen_credits_total Credits charged for media made ahead.\n\
             # TYPE pixsim_pregen_credits_total counter\n\
             pixsim_pregen_credits_total {}\n\
             # HELP pixsim_pregen_unused_credits Credits of media made ahead that no player has entered yet (wasted unless one does).\n\
             # TYPE pixsim_pregen_unused_credits gauge\n\
             pixsim_pregen_unused_credits {}",
            self.pregen_credits.load(Ordering::Relaxed),
            self.pregen_unused_credits.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP pixsim_scene_media_first_entries_total First entries into a generation node (per spec, since start) by what they found; the pre-generation hit rate is pregenerated / (pregenerated + pregenerating + nothing).\n\
             # TYPE pixsim_scene_media_first_entries_total counter\n",
        );
        for (label, found) in [
            ("pregenerated", Found::Pregenerated),
            ("pregenerating", Found::Pregenerating),
            ("nothing", Found::Nothing),
            ("existing", Found::Existing),
        ] {
            let _ = writeln!(
                out,
                "pixsim_scene_media_first_entries_total{{found=\"{label}\"}} {}",
                self.first[found as usize].load(Ordering::Relaxed)
            );
        }
        self.wait_ahead.snapshot().write_prometheus(
            &mut out,
            "pixsim_scene_media_wait_ahead_seconds",
            "From a player's entry into a generation node to its media, for specs made ahead of their first entry (0 when ready at entry).",
        );
        self.wait_on_entry.snapshot().write_prometheus(
            &mut out,
            "pixsim_scene_media_wait_on_entry_seconds",
            "From a player's entry into a generation node to its media, for specs first asked for by an entry.",
        );
        let per_node: Vec<((String, String), NodeWaits)> = self
            .per_node
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        // Scene and node ids are identifiers: nothing to escape in the labels.
        for (name, help, value) in [
            (
                "pixsim_scene_media_node_entries_total",
                "Entries into each generation node whose media reached them.",
                (|w: &NodeWaits| w.entries as f64) as fn(&NodeWaits) -> f64,
            ),
            (
                "pixsim_scene_media_node_waited_total",
                "Of those, the entries that found no media and waited for it.",
                |w| w.waited as f64,
            ),
            (
                "pixsim_scene_media_node_wait_seconds_total",
                "Their waits summed, in seconds.",
                |w| w.sum_secs,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((scene, node), w) in &per_node {
                let _ = writeln!(
                    out,
                    "{name}{{scene=\"{scene}\",node=\"{node}\"}} {}",
                    value(w)
                );
            }
        }
        out
    }

    /// A `/metrics` source reading these counters.
    pub(crate) fn source(self: &Arc<Self>) -> api::MetricsSource {
        let me = Arc::clone(self);
        Arc::new(move || Box::pin(std::future::ready(me.text())))
    }
}
