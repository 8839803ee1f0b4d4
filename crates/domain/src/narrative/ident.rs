//! [`IDENT`]: the identifier rule every id of the content format follows (scenes, nodes,
//! edges, variables, items, ...). The content types put it in their JSON Schemas
//! (feature `schema`); also at `narrative::schema::IDENT`.

/// The identifier pattern of every id (scenes, nodes, edges, variables, items, ...).
pub const IDENT: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
