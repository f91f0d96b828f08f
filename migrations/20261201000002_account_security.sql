-- Account security: second factors, step-up, sessions, and the member lifecycle.
--
-- The database keeps the rules it can check itself: a counted attempt before
-- every password or code comparison, recovery codes and reset links stored as
-- hashes it compares, single use, one owner at least, a recent sign-in before
-- owner actions and before removing a second factor. What only the app can
-- check (a TOTP code against a secret sealed with the app's keyring, a passkey
-- signature) it accepts only with the app's attestation: a MAC under a key in
-- paddock_private that the server reads at start-up through its owner
-- connection. An SQL injection runs as the app role, cannot read that key, and
-- so cannot claim a second factor it does not have.

insert into paddock_private.secrets (name, value)
values ('attestation', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

alter table totp enable row level security;
alter table totp force row level security;
create policy totp_own on totp for select
    using (member_id = (select paddock_current_member()));
create policy totp_set_up on totp for insert
    with check (
        member_id = (select paddock_current_member())
        and organization_id = (select paddock_current_organization())
        and enabled_at is null
    );
-- A secret can be replaced only while it is being set up, never once it is on.
create policy totp_replace_while_setting_up on totp for update
    using (member_id = (select paddock_current_member()) and enabled_at is null)
    with check (member_id = (select paddock_current_member()) and enabled_at is null);

alter table passkeys enable row level security;
alter table passkeys force row level security;
create policy passkeys_own on passkeys for all
    using (member_id = (select paddock_current_member()))
    with check (
        member_id = (select paddock_current_member())
        and organization_id = (select paddock_current_organization())
    );

create table paddock_private.recovery_codes (
    member_id uuid not null references members (id) on delete cascade,
    code_hash bytea not null,
    used_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (member_id, code_hash)
);

create table paddock_private.reset_links (
    code_hash bytea primary key,
    member_id uuid not null references members (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    created_by uuid not null references members (id) on delete cascade,
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
);

-- Helpers (owner only) ---------------------------------------------------------

-- Whether `p_mac` is the app's attestation of `p_message`.
create function paddock_private.attested(p_message text, p_mac bytea) returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select coalesce(p_mac = sha256(k.value || sha256(k.value || convert_to(p_message, 'UTF8'))), false)
    from paddock_private.secrets k where k.name = 'attestation'
$$;

-- The current identity's session, if it proved who it is in the last 10 minutes.
create function paddock_private.fresh() returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select exists (
        select 1 from paddock_private.sessions s
        where s.public_id = paddock_private.identity_part(4)
          and s.authenticated_at > now() - interval '10 minutes'
    )
$$;

-- Records an event for the current identity with a kind and detail the calling
-- function chose.
create function paddock_private.record(p_kind text, p_detail text, p_ip text, p_user_agent text)
returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (paddock_private.identity_part(3), paddock_private.identity_part(2), p_kind, p_detail,
            p_ip, left(p_user_agent, 256))
$$;

-- The current identity as an owner who signed in within 10 minutes, or an error.
create function paddock_private.fresh_owner() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (
        select 1 from public.members m
        where m.id = paddock_private.identity_part(2) and m.role = 'owner' and m.removed_at is null
    ) then
        raise exception 'owners only' using errcode = '42501';
    end if;
    if not paddock_private.fresh() then
        raise exception 'confirm it is you first' using errcode = '42501', hint = 'step-up';
    end if;
    return paddock_private.identity_part(3);
end
$$;

-- The pending second-factor session whose secret is `p_token`, locked.
create function paddock_private.pending(p_token bytea) returns paddock_private.sessions
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    select * from paddock_private.sessions s
    where s.token_hash = sha256(p_token) and s.state = 'second_factor' and s.idle_expires_at > now()
    for update
$$;

-- Makes the pending session `p_old` a signed-in one under a new secret, and
-- forgets the account's failures of its own kind of client.
create function paddock_private.promote(p_old bytea, p_new bytea, p_how text, p_ip text, p_user_agent text)
returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    s paddock_private.sessions%rowtype;
begin
    delete from paddock_private.sessions x where x.token_hash = p_old returning * into s;
    perform paddock_private.new_session(p_new, s.member_id, s.organization_id, 'signed_in', p_ip, p_user_agent);
    delete from paddock_private.sign_in_failures f
    where f.scope = 'account' and f.device is not distinct from s.device and f.settled
      and f.subject = paddock_private.account_subject(
        (select m.email from public.members m where m.id = s.member_id));
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (s.organization_id, s.member_id, 'sign_in', p_how, p_ip, left(p_user_agent, 256));
end
$$;

-- Settles one counted, unsettled attempt for `p_email`'s account.
create function paddock_private.settle(p_email text, p_attempts bigint[]) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
    update paddock_private.sign_in_failures f set settled = true
    where f.id = any(p_attempts) and f.scope = 'account'
      and f.subject = paddock_private.account_subject(p_email) and not f.settled;
    return found;
end
$$;

-- Whether `p_code` is an unused recovery code of `p_member`; uses it up if so.
create function paddock_private.use_recovery_code(p_member uuid, p_code text) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
    update paddock_private.recovery_codes r set used_at = now()
    where r.member_id = p_member and r.used_at is null
      and r.code_hash = sha256(convert_to(upper(replace(trim(p_code), '-', '')), 'UTF8'));
    return found;
end
$$;

-- The second step of sign-in ----------------------------------------------------

-- What the second step needs, for the pending session whose secret is `p_token`.
create function paddock_pending_second_factor(p_token bytea)
returns table (
    member_id uuid,
    organization_id uuid,
    email text,
    sealed_totp_secret bytea,
    last_used_step bigint,
    passkeys integer
)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select m.id, m.organization_id, m.email, t.sealed_secret, coalesce(t.last_used_step, 0),
           (select count(*)::int from public.passkeys k where k.member_id = m.id)
    from paddock_private.sessions s
    join public.members m on m.id = s.member_id and m.removed_at is null
    left join public.totp t on t.member_id = m.id and t.enabled_at is not null
    where s.token_hash = sha256(p_token) and s.state = 'second_factor' and s.idle_expires_at > now()
$$;

-- Counts a second-factor guess like a password guess: on the device the
-- password step was counted against, or per account and address.
create function paddock_second_factor_attempt(p_token bytea, p_address text)
returns table (retry_after integer, attempts bigint[])
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_email text;
    v_device text;
begin
    select m.email, s.device into v_email, v_device
    from paddock_private.sessions s join public.members m on m.id = s.member_id
    where s.token_hash = sha256(p_token) and s.state = 'second_factor' and s.idle_expires_at > now();
    if v_email is null then
        return;
    end if;
    return query select c.retry_after, c.attempts
        from paddock_private.count_attempt(paddock_private.account_subject(v_email), p_address, v_device) c;
end
$$;

-- Finishes sign-in with a TOTP code or passkey the app verified and attested
-- (`p_method` 'totp' with the code's time step, or 'passkey'), or with a
-- recovery code the database checks itself (`p_recovery_code`). Settles the
-- counted attempt first. On success the pending session becomes a signed-in one
-- under `p_new_token` and the member is returned; otherwise the failure is
-- recorded.
create function paddock_complete_second_factor(
    p_token bytea, p_new_token bytea, p_attempts bigint[], p_method text, p_step bigint,
    p_attestation bytea, p_recovery_code text, p_address text, p_ip text, p_user_agent text
)
returns table (member_id uuid, organization_id uuid)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    s paddock_private.sessions%rowtype;
    m public.members%rowtype;
    v_ok boolean := false;
begin
    s := paddock_private.pending(p_token);
    if s.token_hash is null then
        return;
    end if;
    select * into m from public.members x where x.id = s.member_id and x.removed_at is null;
    if m.id is null or not paddock_private.settle(m.email, p_attempts) then
        return;
    end if;
    if p_recovery_code is not null then
        v_ok := paddock_private.use_recovery_code(m.id, p_recovery_code);
        if v_ok then
            insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
            values (m.organization_id, m.id, 'recovery_code_used', 'at sign-in', p_ip, left(p_user_agent, 256));
        end if;
    elsif p_method = 'totp' then
        update public.totp t set last_used_step = p_step
        where t.member_id = m.id and t.enabled_at is not null and t.last_used_step < p_step
          and paddock_private.attested(concat_ws(':', 'second_factor', encode(s.token_hash, 'hex'), 'totp', p_step), p_attestation);
        v_ok := found;
    elsif p_method = 'passkey' then
        v_ok := exists (select 1 from public.passkeys k where k.member_id = m.id)
            and paddock_private.attested(concat_ws(':', 'second_factor', encode(s.token_hash, 'hex'), 'passkey', p_step), p_attestation);
    end if;
    if not v_ok then
        perform paddock_private.record_failure(m.id, m.organization_id, 'wrong authentication code',
            paddock_private.account_subject(m.email), p_address, p_ip, p_user_agent);
        return;
    end if;
    perform paddock_private.promote(s.token_hash, p_new_token,
        case when p_recovery_code is not null then 'with a recovery code'
             when p_method = 'passkey' then 'with a passkey'
             else 'with an authentication code' end, p_ip, p_user_agent);
    return query select m.id, m.organization_id;
end
$$;

-- Step-up ---------------------------------------------------------------------

-- "Confirm it's you" for the current session: the password (an Argon2id output
-- for a counted attempt) and, when TOTP is on, an attested code or a recovery
-- code; or a passkey alone (attested). Marks the session freshly authenticated.
create function paddock_reauthenticate(
    p_hash bytea, p_attempts bigint[], p_method text, p_step bigint, p_attestation bytea,
    p_recovery_code text, p_ip text, p_user_agent text
)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    m public.members%rowtype;
    v_session uuid := paddock_private.identity_part(4);
    v_totp boolean;
    v_ok boolean := false;
    v_how text;
begin
    select * into m from public.members x where x.id = paddock_private.identity_part(2) and x.removed_at is null;
    if m.id is null or not paddock_private.settle(m.email, p_attempts) then
        return false;
    end if;
    v_totp := exists (select 1 from public.totp t where t.member_id = m.id and t.enabled_at is not null);
    if p_method = 'passkey' then
        v_ok := exists (select 1 from public.passkeys k where k.member_id = m.id)
            and paddock_private.attested(concat_ws(':', 'reauthenticate', v_session, 'passkey', p_step), p_attestation);
        v_how := 'with a passkey';
    elsif paddock_private.password_matches(m.password_hash, p_hash) then
        v_how := 'with the password';
        if not v_totp then
            v_ok := true;
        elsif p_recovery_code is not null then
            v_ok := paddock_private.use_recovery_code(m.id, p_recovery_code);
            v_how := 'with the password and a recovery code';
        elsif p_method = 'totp' then
            update public.totp t set last_used_step = p_step
            where t.member_id = m.id and t.enabled_at is not null and t.last_used_step < p_step
              and paddock_private.attested(concat_ws(':', 'reauthenticate', v_session, 'totp', p_step), p_attestation);
            v_ok := found;
            v_how := 'with the password and an authentication code';
        end if;
    end if;
    if not v_ok then
        perform paddock_private.record_failure(m.id, m.organization_id, 'confirming it was them failed',
            paddock_private.account_subject(m.email), 'reauthenticate', p_ip, p_user_agent);
        return false;
    end if;
    update paddock_private.sessions s set authenticated_at = now() where s.public_id = v_session;
    delete from paddock_private.sign_in_failures f
    where f.scope = 'account' and f.subject = paddock_private.account_subject(m.email) and f.settled;
    perform paddock_private.record('reauthenticated', v_how, p_ip, p_user_agent);
    return true;
end
$$;

-- Password ----------------------------------------------------------------------

-- Changes the current member's password after checking the current one (an
-- Argon2id output for a counted attempt). Ends every other session and moves
-- this one to `p_new_token`.
create function paddock_change_password(
    p_current_hash bytea, p_attempts bigint[], p_new_password_hash text, p_new_token bytea,
    p_ip text, p_user_agent text
)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    m public.members%rowtype;
    v_session uuid := paddock_private.identity_part(4);
begin
    select * into m from public.members x where x.id = paddock_private.identity_part(2) and x.removed_at is null;
    if m.id is null or not paddock_private.settle(m.email, p_attempts) then
        return false;
    end if;
    if not paddock_private.password_matches(m.password_hash, p_current_hash) then
        perform paddock_private.record_failure(m.id, m.organization_id, 'wrong current password',
            paddock_private.account_subject(m.email), 'password', p_ip, p_user_agent);
        return false;
    end if;
    update public.members x set password_hash = p_new_password_hash where x.id = m.id;
    delete from paddock_private.sessions s where s.member_id = m.id and s.public_id <> v_session;
    update paddock_private.sessions s set token_hash = sha256(p_new_token), authenticated_at = now()
    where s.public_id = v_session;
    delete from paddock_private.sign_in_failures f
    where f.scope = 'account' and f.subject = paddock_private.account_subject(m.email) and f.settled;
    perform paddock_private.record('password_changed', 'other sessions were signed out', p_ip, p_user_agent);
    return true;
end
$$;

-- Two-factor set-up -------------------------------------------------------------

-- Confirms the TOTP secret being set up (the app checked a code against it) and
-- stores the hashes of the first recovery codes.
create function paddock_enable_totp(p_step bigint, p_recovery_hashes bytea[], p_ip text, p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid := paddock_private.identity_part(2);
begin
    update public.totp t set enabled_at = now(), last_used_step = p_step
    where t.member_id = v_member and t.enabled_at is null;
    if not found then
        return false;
    end if;
    delete from paddock_private.recovery_codes r where r.member_id = v_member;
    insert into paddock_private.recovery_codes (member_id, code_hash)
    select v_member, h from unnest(p_recovery_hashes) h;
    perform paddock_private.record('two_factor_enabled', 'authenticator app', p_ip, p_user_agent);
    return true;
end
$$;

-- Turns TOTP off: only after a recent sign-in, and not while the organization
-- requires two-factor authentication and no passkey remains. It locks the
-- member's row, as removing a passkey does, so the two cannot both pass the
-- policy check at once and leave no second factor.
create function paddock_disable_totp(p_ip text, p_user_agent text) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid := paddock_private.identity_part(2);
begin
    if not paddock_private.fresh() then
        return 'step_up';
    end if;
    perform 1 from public.members m where m.id = v_member for update;
    if (select o.require_two_factor from public.organizations o where o.id = paddock_private.identity_part(3))
       and not exists (select 1 from public.passkeys k where k.member_id = v_member) then
        return 'required';
    end if;
    delete from public.totp t where t.member_id = v_member;
    delete from paddock_private.recovery_codes r where r.member_id = v_member;
    perform paddock_private.record('two_factor_disabled', 'authenticator app', p_ip, p_user_agent);
    return 'done';
end
$$;

-- Replaces the current member's recovery codes (TOTP must be on).
create function paddock_replace_recovery_codes(p_recovery_hashes bytea[], p_ip text, p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid := paddock_private.identity_part(2);
begin
    if not exists (select 1 from public.totp t where t.member_id = v_member and t.enabled_at is not null) then
        return false;
    end if;
    delete from paddock_private.recovery_codes r where r.member_id = v_member;
    insert into paddock_private.recovery_codes (member_id, code_hash)
    select v_member, h from unnest(p_recovery_hashes) h;
    perform paddock_private.record('recovery_codes_regenerated', '', p_ip, p_user_agent);
    return true;
end
$$;

-- How many unused recovery codes the current member has left.
create function paddock_recovery_codes_left() returns integer
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select count(*)::int from paddock_private.recovery_codes r
    where r.member_id = paddock_private.identity_part(2) and r.used_at is null
$$;

-- Sessions ------------------------------------------------------------------------

-- The current member's live sessions (never their secrets).
create function paddock_sessions()
returns table (
    session_id uuid,
    signed_in_at timestamptz,
    last_active_at timestamptz,
    ip text,
    user_agent text,
    current boolean
)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select s.public_id, s.created_at, s.last_active_at, s.ip, s.user_agent,
           s.public_id = paddock_private.identity_part(4)
    from paddock_private.sessions s
    where s.member_id = paddock_private.identity_part(2) and s.state = 'signed_in'
      and s.idle_expires_at > now() and s.absolute_expires_at > now()
    order by s.public_id = paddock_private.identity_part(4) desc, s.last_active_at desc
$$;

-- Ends one of the current member's other sessions; `p_session` null: all others.
create function paddock_revoke_sessions(p_session uuid, p_ip text, p_user_agent text) returns integer
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    delete from paddock_private.sessions s
    where s.member_id = paddock_private.identity_part(2)
      and s.public_id <> paddock_private.identity_part(4)
      and (p_session is null or s.public_id = p_session);
    get diagnostics v_count = row_count;
    if v_count > 0 then
        perform paddock_private.record('session_revoked',
            case when p_session is null then 'all other sessions' else 'one session' end, p_ip, p_user_agent);
    end if;
    return v_count;
end
$$;

-- Owner actions (a recent sign-in required) -------------------------------------

-- Removes a member: sessions end, credentials and second factors are deleted,
-- sign-in is refused from now on; their events are kept.
create function paddock_remove_member(p_member uuid, p_ip text, p_user_agent text) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid := paddock_private.fresh_owner();
    v_email text;
begin
    if p_member = paddock_private.identity_part(2) then
        return false;
    end if;
    update public.members m set removed_at = now()
    where m.id = p_member and m.organization_id = v_org and m.removed_at is null
    returning m.email into v_email;
    if v_email is null then
        return false;
    end if;
    delete from paddock_private.sessions s where s.member_id = p_member;
    delete from public.credentials c where c.member_id = p_member;
    delete from public.totp t where t.member_id = p_member;
    delete from public.passkeys k where k.member_id = p_member;
    delete from paddock_private.recovery_codes r where r.member_id = p_member;
    delete from paddock_private.reset_links r where r.member_id = p_member;
    perform paddock_private.record('member_removed', v_email, p_ip, p_user_agent);
    return true;
end
$$;

-- Makes a member an owner or a plain member; an organization keeps one owner.
create function paddock_set_role(p_member uuid, p_role text, p_ip text, p_user_agent text) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid := paddock_private.fresh_owner();
    v_email text;
begin
    if p_role not in ('owner', 'member') then
        return 'invalid';
    end if;
    -- One role change at a time per organization, so two owners cannot demote
    -- each other at once.
    perform 1 from public.organizations o where o.id = v_org for update;
    if p_role = 'member' and (
        select count(*) from public.members m
        where m.organization_id = v_org and m.role = 'owner' and m.removed_at is null and m.id <> p_member
    ) = 0 then
        return 'last_owner';
    end if;
    update public.members m set role = p_role
    where m.id = p_member and m.organization_id = v_org and m.removed_at is null and m.role <> p_role
    returning m.email into v_email;
    if v_email is null then
        return 'unchanged';
    end if;
    perform paddock_private.record('role_changed', v_email || ' is now ' || case p_role when 'owner' then 'an owner' else 'a member' end, p_ip, p_user_agent);
    return 'done';
end
$$;

-- Stores a single-use reset link (its hash) for a member, valid one hour.
create function paddock_create_reset_link(p_member uuid, p_code_hash bytea, p_ip text, p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid := paddock_private.fresh_owner();
    v_email text;
begin
    select m.email into v_email from public.members m
    where m.id = p_member and m.organization_id = v_org and m.removed_at is null;
    if v_email is null then
        return false;
    end if;
    insert into paddock_private.reset_links (code_hash, member_id, organization_id, created_by, expires_at)
    values (p_code_hash, p_member, v_org, paddock_private.identity_part(2), now() + interval '1 hour');
    perform paddock_private.record('reset_link_created', 'for ' || v_email, p_ip, p_user_agent);
    return true;
end
$$;

-- Turns the organization's "Require two-factor authentication" on or off.
create function paddock_set_policy(p_require boolean, p_ip text, p_user_agent text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid := paddock_private.fresh_owner();
begin
    update public.organizations o set require_two_factor = p_require
    where o.id = v_org and o.require_two_factor <> p_require;
    if found then
        perform paddock_private.record('policy_changed',
            case when p_require then 'two-factor authentication required' else 'two-factor authentication optional' end,
            p_ip, p_user_agent);
    end if;
end
$$;

-- Reset links --------------------------------------------------------------------

-- The email a valid, unused, unexpired reset link is for; nothing otherwise.
create function paddock_reset_link(p_code_hash bytea) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select m.email from paddock_private.reset_links r
    join public.members m on m.id = r.member_id and m.removed_at is null
    where r.code_hash = p_code_hash and r.used_at is null and r.expires_at > now()
$$;

-- Sets a new password with a reset link, once; every session of that member ends.
create function paddock_reset_password(p_code_hash bytea, p_password_hash text, p_ip text, p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    r paddock_private.reset_links%rowtype;
begin
    update paddock_private.reset_links x set used_at = now()
    where x.code_hash = p_code_hash and x.used_at is null and x.expires_at > now()
    returning * into r;
    if r.member_id is null then
        return false;
    end if;
    update public.members m set password_hash = p_password_hash
    where m.id = r.member_id and m.removed_at is null;
    if not found then
        return false;
    end if;
    delete from paddock_private.sessions s where s.member_id = r.member_id;
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (r.organization_id, r.member_id, 'password_reset', 'with a link from an owner', p_ip, left(p_user_agent, 256));
    return true;
end
$$;

-- Deletes expired sessions, sign-in failures older than the window, and spent
-- or expired reset links.
create function paddock_sweep() returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    delete from paddock_private.sessions
    where idle_expires_at < now() or absolute_expires_at < now();
    delete from paddock_private.sign_in_failures where failed_at < now() - interval '15 minutes';
    delete from paddock_private.reset_links where expires_at < now() - interval '1 day';
$$;

revoke execute on all functions in schema public from public;
revoke execute on all functions in schema paddock_private from public;
