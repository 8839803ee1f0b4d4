//! Loading and validating `scenes/` into domain types.
//!
//! Layout of a content directory:
//! - `world.toml`: the [`WorldConfig`] (variables, stats, XP curve, items, quests, locked scenes),
//! - every other `*.toml` file (recursively, in sorted path order): one [`Scene`] each.
//!
//! API:
//! - [`load_dir`] loads and validates; it returns a [`Content`] only when there is no problem,
//!   otherwise the [`Report`] (the server refuses to start / keeps the old content).
//! - [`validate_path`] returns the [`Report`] for a directory (or a single scene file, whose
//!   directory provides the world config and the other scenes); its `Display` prints one line
//!   per problem: `scenes/intro.toml: node 'n3': edge 'e5' points to missing node 'nope'`.
//! - [`fingerprint`] and [`Watcher`] implement cheap change detection for hot reload
//!   (paths + modification times + sizes, no file contents read).

pub mod assets;
pub mod library;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use domain::narrative::{Content, Scene, WorldConfig};

pub use validate::{validate, validate_with};

/// One validation problem.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// File (as a path string, joined onto the directory given by the caller).
    pub file: String,
    /// Scene id, when known.
    pub scene: Option<String>,
    /// Node id, when the problem is about a node (or an edge leaving it).
    pub node: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(n) = &self.node {
            write!(f, "node '{n}': ")?;
        } else if let Some(s) = &self.scene {
            write!(f, "scene '{s}': ")?;
        }
        f.write_str(&self.reason)
    }
}

/// A validation report: a list of problems (empty means valid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems, in file order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// No problems.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

/// Errors of [`load_dir`]: the full report.
pub type ContentErrors = Report;

/// A scene together with the file it came from.
#[derive(Clone, Debug)]
pub struct SceneFile {
    /// Path string used in reports.
    pub file: String,
    /// The parsed scene.
    pub scene: Scene,
}

fn problem(file: &str, reason: impl Into<String>) -> Problem {
    Problem {
        file: file.to_string(),
        scene: None,
        node: None,
        reason: reason.into(),
    }
}

fn scene_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and parses a directory without semantic validation.
/// Returns the world config (if it parsed), the scenes, and syntax-level problems.
pub fn read_dir(dir: &Path) -> (Option<(String, WorldConfig)>, Vec<SceneFile>, Vec<Problem>) {
    let mut problems = Vec::new();
    let world_path = dir.join("world.toml");
    let world_file = world_path.display().to_string();
    let world = match std::fs::read_to_string(&world_path) {
        Ok(text) => match toml::from_str::<WorldConfig>(&text) {
            Ok(w) => Some((world_file.clone(), w)),
            Err(e) => {
                problems.push(problem(
                    &world_file,
                    format!("parse error: {}", one_line(&e.to_string())),
                ));
                None
            }
        },
        Err(e) => {
            problems.push(problem(
                &world_file,
                format!("cannot read world config: {e}"),
            ));
            None
        }
    };
    let files = match scene_files(dir) {
        Ok(f) => f,
        Err(e) => {
            problems.push(problem(
                &dir.display().to_string(),
                format!("cannot list directory: {e}"),
            ));
            Vec::new()
        }
    };
    let mut scenes = Vec::new();
    for path in files {
        if path == world_path {
            continue;
        }
        let file = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match toml::from_str::<Scene>(&text) {
                Ok(scene) => scenes.push(SceneFile { file, scene }),
                Err(e) => problems.push(problem(
                    &file,
                    format!("parse error: {}", one_line(&e.to_string())),
                )),
            },
            Err(e) => problems.push(problem(&file, format!("cannot read: {e}"))),
        }
    }
    (world, scenes, problems)
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks one generation spec of a media node against the pipeline's rules (provider,
/// operation, parameters); returns the problems as messages. The content crate knows no
/// providers: the server plugs the generation pipeline's check in through [`Checks`].
pub type MediaCheck =
    std::sync::Arc<dyn Fn(&domain::narrative::scene::GenerationSpec) -> Vec<String> + Send + Sync>;

/// Checks beyond the content's own rules.
#[derive(Clone, Default)]
pub struct Checks {
    /// Generation specs of media nodes.
    pub media: Option<MediaCheck>,
    /// The assets directory: every `asset = "assets/…"` must be a media file in it
    /// ([`assets::check_asset`]). `None` skips the check.
    pub assets_dir: Option<PathBuf>,
    /// The mini-games scenes may name, from the simulation's registry
    /// (`sim::MiniGames::rules`); the built-in games when `None`.
    pub minigames: Option<MiniGameList>,
    /// The asset library's clips and branch points published to the scenes
    /// ([`library`]); `None`: a scene that names one is reported as unchecked.
    pub library: Option<std::sync::Arc<library::Library>>,
}

/// The rules of every mini-game a registry holds.
pub type MiniGameList =
    std::sync::Arc<[std::sync::Arc<dyn domain::narrative::minigame::MiniGameRules>]>;

impl fmt::Debug for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checks")
            .field("media", &self.media.is_some())
            .field("assets_dir", &self.assets_dir)
            .field("minigames", &self.minigames.as_ref().map(|g| g.len()))
            .field(
                "library",
                &self
                    .library
                    .as_ref()
                    .map(|l| (l.clips.len(), l.branches.len())),
            )
            .finish()
    }
}

fn run_checks(checks: &Checks, scenes: &[SceneFile]) -> Vec<Problem> {
    let mut out = match &checks.assets_dir {
        Some(dir) => assets::check(dir, scenes),
        None => Vec::new(),
    };
    let Some(media) = &checks.media else {
        return out;
    };
    for sf in scenes {
        for node in &sf.scene.nodes {
            for spec in node.kind.generations() {
                for reason in media(spec) {
                    out.push(Problem {
                        file: sf.file.clone(),
                        scene: Some(sf.scene.id.clone()),
                        node: Some(node.id.clone()),
                        reason: format!("generation spec: {reason}"),
                    });
                }
            }
        }
    }
    out
}

/// Loads and validates a content directory.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Content, ContentErrors> {
    load_dir_with(dir, &Checks::default())
}

/// [`load_dir`] with extra checks.
pub fn load_dir_with(dir: impl AsRef<Path>, checks: &Checks) -> Result<Content, ContentErrors> {
    let dir = dir.as_ref();
    let (world, mut scenes, mut problems) = read_dir(dir);
    let Some((world_file, world)) = world else {
        return Err(Report { problems });
    };
    problems.extend(library::resolve(checks.library.as_deref(), &mut scenes));
    let games = match &checks.minigames {
        Some(games) => games.to_vec(),
        None => domain::narrative::minigame::builtin_rules(),
    };
    problems.extend(validate::validate_with(
        &world_file,
        &world,
        &scenes,
        &games,
    ));
    problems.extend(run_checks(checks, &scenes));
    if !problems.is_empty() {
        return Err(Report { problems });
    }
    Ok(Content::new(world, scenes.into_iter().map(|s| s.scene)))
}

/// Validates a content directory, or one scene file (in the context of its directory).
pub fn validate_path(path: impl AsRef<Path>) -> Report {
    validate_path_with(path, &Checks::default())
}

/// [`validate_path`] with extra checks.
pub fn validate_path_with(path: impl AsRef<Path>, checks: &Checks) -> Report {
    let path = path.as_ref();
    if path.is_file() {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let file = path.display().to_string();
        let report = match load_dir_with(dir, checks) {
            Ok(_) => Report::default(),
            Err(r) => r,
        };
        let problems = report
            .problems
            .into_iter()
            .filter(|p| Path::new(&p.file) == path || p.file == file)
            .collect();
        Report { problems }
    } else {
        match load_dir_with(path, checks) {
            Ok(_) => Report::default(),
            Err(r) => r,
        }
    }
}

/// A cheap fingerprint of a content directory: FNV-1a over every file's path, size and
/// modification time. Changes whenever a file is added, removed, resized or touched.
pub fn fingerprint(dir: impl AsRef<Path>) -> u64 {
    let dir = dir.as_ref();
    let mut acc = String::new();
    match scene_files(dir) {
        Ok(files) => {
            for f in files {
                let meta = std::fs::metadata(&f);
                let (len, mtime) = match meta {
                    Ok(m) => (
                        m.len(),
                        m.modified()
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_nanos()),
                    ),
                    Err(_) => (0, 0),
                };
                acc.push_str(&format!("{}\0{len}\0{mtime}\n", f.display()));
            }
        }
        Err(e) => acc.push_str(&format!("error: {e}")),
    }
    domain::narrative::content::fnv1a(acc.as_bytes())
}

/// Polls a directory for changes and reloads it.
#[derive(Debug)]
pub struct Watcher {
    dir: PathBuf,
    last: u64,
    checks: Checks,
}

impl Watcher {
    /// Starts watching; the current state counts as seen.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let last = fingerprint(&dir);
        Self {
            dir,
            last,
            checks: Checks::default(),
        }
    }

    /// Applies extra checks to every reload.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// Whether the files changed since the last reload (what [`Self::poll`] reloads on).
    pub fn changed(&self) -> bool {
        fingerprint(&self.dir) != self.last
    }

    /// The asset library the next reloads check scenes against.
    pub fn set_library(&mut self, library: Option<std::sync::Arc<library::Library>>) {
        self.checks.library = library;
    }

    /// Returns `None` when nothing changed; otherwise the result of reloading. On `Err`,
    /// keep the old content and log the report (the change is not retried until the files
    /// change again).
    pub fn poll(&mut self) -> Option<Result<Content, ContentErrors>> {
        let now = fingerprint(&self.dir);
        if now == self.last {
            return None;
        }
        self.last = now;
        let result = load_dir_with(&self.dir, &self.checks);
        match &result {
            Ok(c) => {
                tracing::info!(dir = %self.dir.display(), version = %c.version, "content reloaded")
            }
            Err(report) => tracing::warn!(
                dir = %self.dir.display(),
                problems = report.problems.len(),
                "content change rejected, keeping the previous content:\n{report}"
            ),
        }
        Some(result)
    }
}
