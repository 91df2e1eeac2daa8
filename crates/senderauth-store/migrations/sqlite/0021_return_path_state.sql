-- Each domain's return-path has a lifecycle of its own (issue 16): the gateway sends with the
-- customer's `rp.<domain>` as envelope sender only while it is verified (or still within the
-- degraded window after it failed), exactly as signing follows the domain's own status.
ALTER TABLE domains ADD COLUMN rp_status TEXT NOT NULL DEFAULT 'not_verified';
ALTER TABLE domains ADD COLUMN rp_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN rp_degraded_since INTEGER;
ALTER TABLE verification_results ADD COLUMN rp_status TEXT;
-- What the gateway does with mail signed as a domain whose return-path is not in use:
-- `bounce_domain` (send it with the platform's bounce domain) or `reject`.
ALTER TABLE accounts ADD COLUMN return_path_fallback TEXT NOT NULL DEFAULT 'bounce_domain';
