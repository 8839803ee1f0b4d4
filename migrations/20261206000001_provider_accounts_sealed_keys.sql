-- Provider base URLs are server configuration now, never an account's: a user-owned
-- account could point every provider call at an internal address (issue #18).
ALTER TABLE provider_accounts DROP COLUMN base_url;

-- API keys are sealed by the server (ChaCha20-Poly1305, `v1:` prefix) and the hint
-- users see is kept beside them, so listing accounts never opens a key. Rows written
-- before this keep a plaintext key until the server seals it at startup.
ALTER TABLE provider_accounts ADD COLUMN api_key_hint text NOT NULL DEFAULT '';
UPDATE provider_accounts SET api_key_hint = right(api_key, 4) WHERE api_key NOT LIKE 'v1:%';
