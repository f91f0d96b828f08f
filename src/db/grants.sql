-- Exactly the privileges the runtime role needs; `{app}` is replaced by the
-- quoted role name. Run after every migration (idempotent). The schema
-- paddock_private (sessions, server secrets, sign-in failures) is not granted
-- at all: the app role reaches it only through the functions below.
revoke all on all tables in schema public from {app};
revoke all on all sequences in schema public from {app};
revoke all on all functions in schema public from {app};
revoke all on schema paddock_private from {app};
grant usage on schema public to {app};
grant select on organizations to {app};
grant select (id, organization_id, email, role, removed_at, created_at, updated_at) on members to {app};
grant select (id, organization_id, created_by, expires_at, accepted_by, accepted_at, created_at, updated_at) on invites to {app};
grant insert on invites to {app};
grant select, insert on security_events to {app};
grant select, insert, update, delete on credentials to {app};
grant select (member_id, organization_id, sealed_secret, seal_key_version, enabled_at, last_used_step, created_at, updated_at), insert on totp to {app};
grant update (sealed_secret, seal_key_version) on totp to {app};
grant select on passkeys to {app};
grant select, insert, delete on action_tokens to {app};
grant usage on all sequences in schema public to {app};
grant execute on function
    paddock_current_member(),
    paddock_current_organization(),
    paddock_current_session(),
    paddock_authenticate(bytea),
    paddock_open_request(bytea, uuid[], text, boolean, text, text),
    paddock_end_session(),
    paddock_sweep(),
    paddock_device_cookie(bytea, text[]),
    paddock_sign_in_attempt(text, text, text[]),
    paddock_sign_in(text, text, bytea, bigint[], bytea, text, text),
    paddock_create_organization(text, text, text, bytea, text, text),
    paddock_redeem_invite(bytea, text, text, bytea, text, text),
    paddock_pending_second_factor(bytea),
    paddock_second_factor_attempt(bytea, text),
    paddock_complete_second_factor(bytea, bytea, bigint[], text, bigint, bytea, text, text, text, text),
    paddock_reauthenticate(bytea, bigint[], text, bigint, bytea, text, text, text),
    paddock_change_password(bytea, bigint[], text, bytea, text, text),
    paddock_enable_totp(bigint, bytea[], text, text),
    paddock_disable_totp(text, text),
    paddock_replace_recovery_codes(bytea[], text, text),
    paddock_recovery_codes_left(),
    paddock_sessions(),
    paddock_revoke_sessions(uuid, text, text),
    paddock_remove_member(uuid, text, text),
    paddock_set_role(uuid, text, text, text),
    paddock_create_reset_link(uuid, bytea, text, text),
    paddock_set_policy(boolean, text, text),
    paddock_reset_link(bytea),
    paddock_reset_password(bytea, text, text, text),
    paddock_begin_passkey_ceremony(text, text, bytea),
    paddock_take_passkey_ceremony(text),
    paddock_pending_passkeys(bytea),
    paddock_begin_second_factor_passkey(bytea, text, bytea),
    paddock_take_second_factor_passkey(bytea),
    paddock_add_passkey(text, bytea, text, bytea, text, text),
    paddock_passkey_used(bytea, text, bytea),
    paddock_remove_passkey(uuid, text, text)
to {app};
