//! Scenes against the asset library: a media node's `clip` must be a clip of the
//! library, and its `branch` a branch point, both published to the scenes (owned by the
//! scene content, so every player may fetch them). The server reads what the library
//! holds ([`Library`]) from the database and hands it in through
//! [`crate::Checks::library`]; this module checks the references and turns each branch
//! point into the node's weighted `media` list (one item per variant: its video, weight
//! and condition), which the validator then checks like any other.

use std::collections::HashMap;

use domain::narrative::NodeKind;
use domain::narrative::expr::ExprText;
use domain::narrative::media::{MediaItem, MediaSelect};

use crate::{Problem, SceneFile};

/// What the asset library holds for scenes (ids as text, as scenes name them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Library {
    /// Clips by id (the clip's own asset id).
    pub clips: HashMap<String, LibraryClip>,
    /// Branch points by id.
    pub branches: HashMap<String, LibraryBranch>,
    /// Every asset published to the scenes, by id, with its media type.
    pub assets: HashMap<String, String>,
}

/// A clip: a segment of a video, cut into its own asset.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryClip {
    pub source: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A branch point: a time in a video where the story can fork.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryBranch {
    /// The video it is in.
    pub asset: String,
    pub at_ms: i64,
    pub variants: Vec<LibraryVariant>,
}

/// One way the story can go on from a branch point.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryVariant {
    pub key: String,
    /// Relative weight (the library's decimal weights in thousandths).
    pub weight: u32,
    /// A condition in the scene expression language.
    pub condition: Option<String>,
    /// The video it goes on with (`None`: the branch point's own video).
    pub asset: Option<String>,
}

/// Whether a scene of the content directory (or of the directory of a scene file)
/// names a clip or a branch point: checking it needs the asset library.
pub fn names_library(path: &std::path::Path) -> bool {
    let dir = if path.is_file() {
        path.parent().unwrap_or_else(|| std::path::Path::new("."))
    } else {
        path
    };
    let (_, scenes, _) = crate::read_dir(dir);
    scenes.iter().any(|sf| {
        sf.scene.nodes.iter().any(|n| match &n.kind {
            NodeKind::Media {
                clip,
                branch,
                media,
                ..
            } => clip.is_some() || branch.is_some() || media.iter().any(|m| m.clip.is_some()),
            _ => false,
        })
    })
}

/// Checks every clip and branch reference against `library` and fills each branch
/// node's `media` list and `select`. Without a library, references are reported as
/// unchecked.
pub(crate) fn resolve(library: Option<&Library>, scenes: &mut [SceneFile]) -> Vec<Problem> {
    let mut out = Vec::new();
    for sf in scenes.iter_mut() {
        let (file, scene_id) = (sf.file.clone(), sf.scene.id.clone());
        for node in &mut sf.scene.nodes {
            let NodeKind::Media {
                clip,
                branch,
                media,
                select,
                ..
            } = &mut node.kind
            else {
                continue;
            };
            let mut problem = |reason: String| {
                out.push(Problem {
                    file: file.clone(),
                    scene: Some(scene_id.clone()),
                    node: Some(node.id.clone()),
                    reason,
                })
            };
            let clips = clip
                .iter()
                .map(|c| (String::new(), c.clone()))
                .chain(
                    media
                        .iter()
                        .enumerate()
                        .filter_map(|(i, m)| Some((format!("media {i}: "), m.clip.clone()?))),
                )
                .collect::<Vec<_>>();
            for (at, id) in clips {
                match library {
                    None => problem(format!(
                        "{at}clip '{id}' cannot be checked: no asset library (database) was given"
                    )),
                    Some(lib) if !lib.clips.contains_key(&id) => problem(format!(
                        "{at}clip '{id}' is not a clip of the asset library published to the scenes"
                    )),
                    Some(_) => {}
                }
            }
            let Some(id) = branch.as_deref() else {
                continue;
            };
            let Some(lib) = library else {
                problem(format!(
                    "branch '{id}' cannot be checked: no asset library (database) was given"
                ));
                continue;
            };
            if !media.is_empty() {
                problem("media node has both 'branch' and a 'media' list".into());
                continue;
            }
            let Some(b) = lib.branches.get(id) else {
                problem(format!(
                    "branch '{id}' is not a branch point of the asset library published to the scenes"
                ));
                continue;
            };
            for v in &b.variants {
                let video = v.asset.as_deref().unwrap_or(&b.asset);
                if lib.assets.get(video).map(String::as_str) != Some("video") {
                    problem(format!(
                        "branch '{id}' variant '{}': its video {video} is not published to the scenes",
                        v.key
                    ));
                }
            }
            *media = b
                .variants
                .iter()
                .map(|v| MediaItem {
                    asset: Some(v.asset.clone().unwrap_or_else(|| b.asset.clone())),
                    clip: None,
                    generate: None,
                    variant: None,
                    tags: vec![v.key.clone()],
                    weight: Some(v.weight),
                    condition: v.condition.as_deref().map(ExprText::new),
                })
                .collect();
            *select = MediaSelect::Weighted;
        }
    }
    out
}
