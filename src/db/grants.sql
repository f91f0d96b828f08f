-- Exactly the privileges the runtime role needs; `{app}` is replaced by the
-- quoted role name. Run after every migration (idempotent).
revoke all on all tables in schema public from {app};
revoke all on all sequences in schema public from {app};
revoke all on all functions in schema public from {app};
grant usage on schema public to {app};
grant select on organizations to {app};
grant select (id, organization_id, email, role, created_at, updated_at) on members to {app};
grant select, insert on invites to {app};
grant select, insert on security_events to {app};
grant select, insert, update, delete on credentials to {app};
grant select, insert, delete on action_tokens to {app};
grant select, insert, delete on sign_in_failures to {app};
grant usage on all sequences in schema public to {app};
grant execute on function paddock_current_member(), paddock_current_organization() to {app};
grant execute on function paddock_sign_in_lookup(text) to {app};
grant execute on function paddock_create_organization(text, text, text) to {app};
grant execute on function paddock_redeem_invite(bytea, text, text) to {app};
grant execute on function paddock_record_sign_in_problem(text, text, text, text, text) to {app};
grant usage on schema tower_sessions to {app};
grant select, insert, update, delete on tower_sessions.session to {app};
