-- One name for one state (issue 14): a connected domain not verified yet is `not_verified`, as
-- the CLI, the UI and the reference call it, no longer `pending`.
UPDATE domains SET status = 'not_verified' WHERE status = 'pending';
UPDATE status_events SET from_status = 'not_verified' WHERE from_status = 'pending';
UPDATE status_events SET to_status = 'not_verified' WHERE to_status = 'pending';
UPDATE verification_results SET status = 'not_verified' WHERE status = 'pending';
UPDATE check_runs SET status = 'not_verified' WHERE status = 'pending';
