pub mod admin;
pub mod auth;
pub mod game;
pub mod health;
pub mod rpc;
pub mod users;
