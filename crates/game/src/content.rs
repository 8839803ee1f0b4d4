//! [`ContentCell`]: the narrative content loaded now, shared with the content reload.

use std::sync::{Arc, RwLock};

use domain::narrative::Content;

/// The narrative content currently loaded, shared by the game handle (scene lists,
/// session creation) and the content reload. Cheap to clone.
#[derive(Clone)]
pub struct ContentCell(Arc<RwLock<Arc<Content>>>);

impl std::fmt::Debug for ContentCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ContentCell")
            .field(&self.get().version)
            .finish()
    }
}

impl ContentCell {
    /// A cell holding `content`.
    pub fn new(content: Arc<Content>) -> Self {
        ContentCell(Arc::new(RwLock::new(content)))
    }

    /// The content loaded now.
    pub fn get(&self) -> Arc<Content> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the content (after a reload).
    pub fn set(&self, content: Arc<Content>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = content;
    }
}
