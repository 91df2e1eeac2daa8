-- Webhook signing secrets sealed under the master key like the DKIM private keys. Rows from
-- before keep their secret in `secret` until they are rewrapped or replaced.
ALTER TABLE webhook_endpoints ADD COLUMN secret_sealed BYTEA;
ALTER TABLE webhook_endpoints ADD COLUMN secret_key_id TEXT;
