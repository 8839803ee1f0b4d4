-- The content owner: a fixed account that owns the assets generated for scene media
-- (domain::user::CONTENT_OWNER). It cannot log in (disabled, no valid password hash);
-- assets it owns are readable by every signed-in user.
INSERT INTO users (id, email, password_hash, display_name, role, disabled)
VALUES ('00000000-0000-0000-0000-00000000c0de', 'content-owner@pixsim.invalid', '!',
        'Scene content', 'admin', TRUE)
ON CONFLICT (id) DO NOTHING;
