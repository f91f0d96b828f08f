-- /activity pages newest first by (created_at, id), of all kinds or one, and
-- retention deletes old `credential_used` events in batches.
create index security_events_member_page_idx on security_events (member_id, created_at desc, id desc);
create index security_events_member_kind_page_idx on security_events (member_id, kind, created_at desc, id desc);
create index security_events_key_use_age_idx on security_events (created_at) where kind = 'credential_used';
drop index security_events_member_idx;
