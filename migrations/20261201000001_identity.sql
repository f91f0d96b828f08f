-- Identity bound to a live session, inside PostgreSQL.
--
-- The app role used to say who it was with set_config('paddock.member_id', …):
-- an SQL injection could say anything. Now every tenant transaction starts with
-- paddock_authenticate(session secret): a SECURITY DEFINER function that finds
-- the live session by the secret's hash and sets `paddock.identity` to the
-- member, organization and session, sealed with a MAC over this backend and this
-- transaction's start time under a key the app role cannot read. The policies
-- read the identity through paddock_current_member()/…_organization(), which
-- check the MAC: a forged, edited or replayed (other transaction) identity is
-- no identity. Knowing a member's id is worth nothing.
--
-- Everything secret lives in the schema paddock_private, which the app role
-- cannot even look into: server keys, sessions (stored under the SHA-256 of the
-- cookie secret), and sign-in failures. The app role reaches them only through
-- the narrow functions below (fixed search_path, EXECUTE revoked from PUBLIC).

create schema paddock_private;
revoke all on schema paddock_private from public;

create table paddock_private.secrets (
    name text primary key,
    value bytea not null
);
-- 32 bytes from the server's strong random source (gen_random_uuid uses it).
insert into paddock_private.secrets (name, value)
select name, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
from (values ('identity'), ('unknown_email_salt'), ('device')) as s (name);

create table paddock_private.sessions (
    token_hash bytea primary key,
    public_id uuid not null default gen_random_uuid() constraint sessions_public_id_key unique,
    member_id uuid not null references members (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    state text not null constraint sessions_state check (state in ('second_factor', 'signed_in')),
    created_at timestamptz not null default now(),
    authenticated_at timestamptz not null default now(),
    last_active_at timestamptz not null default now(),
    idle_expires_at timestamptz not null,
    absolute_expires_at timestamptz not null,
    ip text,
    user_agent text,
    -- For a session waiting for its second factor: the trusted device its
    -- password step was counted against, so the second step is counted the same.
    device text
);
create index sessions_member_idx on paddock_private.sessions (member_id);
create index sessions_expiry_idx on paddock_private.sessions (idle_expires_at);

-- What sign-in and every request need to know about second factors and the
-- member's standing (the functions that manage them are in the next migration).
alter table members add column removed_at timestamptz;
alter table organizations add column require_two_factor boolean not null default false;

create table totp (
    member_id uuid primary key references members (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    sealed_secret bytea not null,
    seal_key_version text not null,
    -- Null while being set up: the secret is shown, not yet confirmed by a code.
    enabled_at timestamptz,
    -- The last time step whose code was accepted: a code is never accepted twice.
    last_used_step bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger totp_updated_at before update on totp for each row execute function paddock_set_updated_at();

create table passkeys (
    id uuid primary key default gen_random_uuid(),
    member_id uuid not null references members (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    name text not null constraint passkeys_name_length check (char_length(name) between 1 and 64),
    credential_id bytea not null constraint passkeys_credential_id_key unique,
    passkey jsonb not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz
);
create index passkeys_member_idx on passkeys (member_id);

-- Sign-in failures move out of the app role's reach: an injection could have
-- deleted them to guess without limit.
alter table sign_in_failures set schema paddock_private;
-- An attempt settles once, when its password is checked: one counted attempt
-- buys exactly one comparison.
alter table paddock_private.sign_in_failures add column settled boolean not null default false;
-- The trusted device an attempt was counted against (its nonce); null for an
-- untrusted client (see "Trusted devices" below).
alter table paddock_private.sign_in_failures add column device text;

drop schema if exists tower_sessions cascade;

-- The MAC that seals an identity to this backend and this transaction.
-- Not executable by the app role: it would let it mint identities.
create function paddock_private.identity_mac(p_member uuid, p_organization uuid, p_session uuid)
returns text
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
    k bytea;
begin
    select s.value into k from paddock_private.secrets s where s.name = 'identity';
    return encode(sha256(k || sha256(k || convert_to(concat_ws(':',
        p_member, p_organization, p_session, pg_backend_pid(),
        extract(epoch from transaction_timestamp())), 'UTF8'))), 'hex');
end
$$;
revoke all on function paddock_private.identity_mac(uuid, uuid, uuid) from public;

-- Element `n` (2 member, 3 organization, 4 session) of a valid identity, else
-- null. The MAC is checked over the parts exactly as sent, before any cast: an
-- identity that is not exactly what paddock_authenticate wrote never matches,
-- so no cast can fail and no exception block (a subtransaction per call) is
-- needed. PL/pgSQL, not SQL: the policies call these in every statement, and
-- PL/pgSQL keeps its plans for the connection's life where a SECURITY DEFINER
-- SQL function is parsed and planned again at every call.
create function paddock_private.identity_part(n int)
returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v text[] := string_to_array(current_setting('paddock.identity', true), ':');
    k bytea;
begin
    if v is null or array_length(v, 1) <> 5 or v[1] <> 'v1' then
        return null;
    end if;
    select s.value into k from paddock_private.secrets s where s.name = 'identity';
    if v[5] is distinct from encode(sha256(k || sha256(k || convert_to(concat_ws(':',
            v[2], v[3], v[4], pg_backend_pid(),
            extract(epoch from transaction_timestamp())), 'UTF8'))), 'hex') then
        return null;
    end if;
    return v[n]::uuid;
end
$$;
revoke all on function paddock_private.identity_part(int) from public;

create or replace function paddock_current_member() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(2); end $$;

create or replace function paddock_current_organization() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(3); end $$;

create function paddock_current_session() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(4); end $$;

revoke all on function paddock_current_member() from public;
revoke all on function paddock_current_organization() from public;
revoke all on function paddock_current_session() from public;

-- Policies read the identity once per statement (an initplan), not once per row.
drop policy organizations_own on organizations;
create policy organizations_own on organizations for select
    using (id = (select paddock_current_organization()));

drop policy members_same_organization on members;
create policy members_same_organization on members for select
    using (organization_id = (select paddock_current_organization()));

drop policy invites_same_organization on invites;
create policy invites_same_organization on invites for select
    using (organization_id = (select paddock_current_organization()));
drop policy invites_created_by_owner on invites;
create policy invites_created_by_owner on invites for insert
    with check (
        organization_id = (select paddock_current_organization())
        and created_by = (select paddock_current_member())
        and exists (
            select 1 from members m
            where m.id = (select paddock_current_member())
              and m.organization_id = (select paddock_current_organization())
              and m.role = 'owner'
        )
    );

drop policy security_events_own on security_events;
create policy security_events_own on security_events for select
    using (member_id = (select paddock_current_member()));
drop policy security_events_append_own on security_events;
create policy security_events_append_own on security_events for insert
    with check (
        member_id = (select paddock_current_member())
        and organization_id = (select paddock_current_organization())
    );

drop policy credentials_own on credentials;
create policy credentials_own on credentials for all
    using (
        member_id = (select paddock_current_member())
        and organization_id = (select paddock_current_organization())
    )
    with check (
        member_id = (select paddock_current_member())
        and organization_id = (select paddock_current_organization())
    );

-- Sessions ------------------------------------------------------------------

-- Idle and absolute lifetimes, in one place: a session waiting for its second
-- factor lives five minutes.
create function paddock_private.new_session(
    p_token bytea, p_member uuid, p_organization uuid, p_state text, p_ip text, p_user_agent text
) returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    insert into paddock_private.sessions
        (token_hash, member_id, organization_id, state, idle_expires_at, absolute_expires_at, ip, user_agent)
    values (sha256(p_token), p_member, p_organization, p_state,
            now() + case p_state when 'signed_in' then interval '30 minutes' else interval '5 minutes' end,
            now() + case p_state when 'signed_in' then interval '12 hours' else interval '5 minutes' end,
            p_ip, left(p_user_agent, 256))
$$;
revoke all on function paddock_private.new_session(bytea, uuid, uuid, text, text, text) from public;

-- The first statement of every tenant transaction. Finds the live, signed-in
-- session whose secret is `p_token`, keeps it alive (at most one write a
-- minute), sets the transaction's identity and returns who is asking. No row:
-- no such session, and no identity.
create function paddock_authenticate(p_token bytea)
returns table (
    member_id uuid,
    organization_id uuid,
    organization_name text,
    email text,
    role text,
    session_id uuid,
    authenticated_at timestamptz,
    totp_enabled boolean,
    passkeys integer,
    require_two_factor boolean
)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    s paddock_private.sessions%rowtype;
begin
    select * into s from paddock_private.sessions x
    where x.token_hash = sha256(p_token)
      and x.state = 'signed_in'
      and x.idle_expires_at > now()
      and x.absolute_expires_at > now();
    if not found then
        return;
    end if;
    if s.last_active_at < now() - interval '1 minute' then
        update paddock_private.sessions x
        set last_active_at = now(),
            idle_expires_at = least(now() + interval '30 minutes', x.absolute_expires_at)
        where x.token_hash = s.token_hash;
    end if;
    perform set_config('paddock.identity', concat_ws(':', 'v1', s.member_id, s.organization_id,
        s.public_id, paddock_private.identity_mac(s.member_id, s.organization_id, s.public_id)), true);
    return query
        select m.id, m.organization_id, o.name, m.email, m.role, s.public_id, s.authenticated_at,
               exists (select 1 from public.totp t where t.member_id = m.id and t.enabled_at is not null),
               (select count(*)::int from public.passkeys k where k.member_id = m.id),
               o.require_two_factor
        from public.members m join public.organizations o on o.id = m.organization_id
        where m.id = s.member_id and m.removed_at is null;
end
$$;
revoke all on function paddock_authenticate(bytea) from public;

-- Ends the session of the current identity (sign-out).
create function paddock_end_session() returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    delete from paddock_private.sessions where public_id = paddock_private.identity_part(4)
$$;
revoke all on function paddock_end_session() from public;

-- Sign-in -------------------------------------------------------------------

-- The throttling subject of an account: a hash of the normalized email, so the
-- table of failures holds no addresses.
create function paddock_private.account_subject(p_email text) returns text
language sql immutable
as $$ select encode(sha256(convert_to(lower(trim(p_email)), 'UTF8')), 'hex') $$;

-- PHC strings use unpadded base64; PostgreSQL's decoder wants the padding.
create function paddock_private.padded_base64(p text) returns text
language sql immutable
as $$ select p || repeat('=', (4 - length(p) % 4) % 4) $$;

-- Whether `p_hash` is the Argon2id output stored in the PHC string `p_phc`.
create function paddock_private.password_matches(p_phc text, p_hash bytea) returns boolean
language sql immutable
as $$
    select array_length(string_to_array(p_phc, '$'), 1) = 6
       and decode(paddock_private.padded_base64(split_part(p_phc, '$', 6)), 'base64') = p_hash
$$;

-- Records a failed step on the member's log, and a lockout when this failure
-- reached a limit of its kind of client: the kind of the attempt this
-- transaction has just settled (every caller settles one before it calls).
create function paddock_private.record_failure(
    p_member uuid, p_organization uuid, p_detail text, p_account text, p_address text,
    p_ip text, p_user_agent text
) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_detail text;
    v_device text;
begin
    if p_member is null then
        return;
    end if;
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (p_organization, p_member, 'sign_in_failed', p_detail, p_ip, left(p_user_agent, 256));
    select f.device into v_device from paddock_private.sign_in_failures f
    where f.scope = 'account' and f.subject = p_account and f.settled
      and f.xmin = pg_current_xact_id()::xid
    order by f.id desc limit 1;
    if (select count(*) from paddock_private.sign_in_failures f
        where f.scope = 'account' and f.subject = p_account
          and f.device is not distinct from v_device
          and f.failed_at > now() - interval '15 minutes') >= 5 then
        v_detail := case when v_device is null then 'too many failed sign-ins for this account'
                         else 'too many failed sign-ins on a device this account signed in from before' end;
    elsif v_device is null and (select count(*) from paddock_private.sign_in_failures f
           where f.scope = 'address' and f.subject = p_address
             and f.failed_at > now() - interval '15 minutes') >= 20 then
        v_detail := 'too many failed sign-ins from this address';
    end if;
    if v_detail is not null then
        insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
        values (p_organization, p_member, 'sign_in_locked', v_detail, p_ip, left(p_user_agent, 256));
    end if;
end
$$;

-- Trusted devices: a sign-in lockout that cannot lock a member out of a browser
-- they have signed in from before (OWASP's "device cookies").
--
-- Failed guesses were counted per account (5 in 15 minutes) and per client
-- address (20): anyone could lock a member out by guessing wrong five times,
-- and one guesser behind a shared address locked out everybody there.
--
-- Now every completed sign-in gives the browser a device cookie for that
-- account: a random nonce and a MAC over the account and the nonce under a
-- server key the app role cannot read. Only a live signed-in session can have
-- one minted (paddock_device_cookie), so an SQL injection cannot make one. A
-- guess that presents a device cookie valid for the account it names is
-- counted against that device alone (5 in 15 minutes); the account and
-- address limits apply to every other guess ("untrusted clients"). The
-- member's own browser thus signs in while an attacker holds the account or
-- the address locked, and a stolen cookie buys no more guesses than the
-- account had anyway. A success forgets the failures of its own kind only, so
-- a member signing in on their device does not reset an attacker's count.

-- The MAC of the device cookie with `p_nonce` for the account `p_account`.
create function paddock_private.device_mac(p_account text, p_nonce text) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select encode(sha256(k.value || sha256(k.value
        || convert_to('device:v1:' || p_account || ':' || p_nonce, 'UTF8'))), 'hex')
    from paddock_private.secrets k where k.name = 'device'
$$;

-- The nonce of the first of `p_devices` (cookie entries `nonce.mac`, at most
-- five looked at) that is a device cookie of the account `p_account`, else null.
create function paddock_private.trusted_device(p_account text, p_devices text[]) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select split_part(x.d, '.', 1)
    from unnest(coalesce(p_devices, '{}')) with ordinality as x (d, n)
    where x.n <= 5
      and x.d ~ '^[0-9a-f]{32}\.[0-9a-f]{64}$'
      and split_part(x.d, '.', 2) = paddock_private.device_mac(p_account, split_part(x.d, '.', 1))
    order by x.n
    limit 1
$$;

-- Counts one attempt before any secret is checked, one at a time per subject
-- (advisory locks, account first): against the trusted device `p_device` when
-- there is one, else against the account's untrusted clients and the address.
-- Locked: `retry_after` seconds, and nothing is counted.
create function paddock_private.count_attempt(p_account text, p_address text, p_device text)
returns table (retry_after integer, attempts bigint[])
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_wait integer;
    v_ids bigint[];
begin
    perform pg_advisory_xact_lock(hashtextextended('paddock.sign_in:account:' || p_account, 0));
    if p_device is null then
        perform pg_advisory_xact_lock(hashtextextended('paddock.sign_in:address:' || p_address, 0));
    end if;
    select max(w) into v_wait from (
        select ceil(extract(epoch from min(f.failed_at) + interval '15 minutes' - now()))::int as w
        from (select x.failed_at from paddock_private.sign_in_failures x
              where x.scope = 'account' and x.subject = p_account
                and x.device is not distinct from p_device
                and x.failed_at > now() - interval '15 minutes'
              order by x.failed_at desc limit 5) f
        having count(*) >= 5
        union all
        select ceil(extract(epoch from min(f.failed_at) + interval '15 minutes' - now()))::int
        from (select x.failed_at from paddock_private.sign_in_failures x
              where p_device is null and x.scope = 'address' and x.subject = p_address
                and x.failed_at > now() - interval '15 minutes'
              order by x.failed_at desc limit 20) f
        having count(*) >= 20
    ) locks;
    if v_wait is not null then
        return query select greatest(v_wait, 1), null::bigint[];
        return;
    end if;
    with inserted as (
        insert into paddock_private.sign_in_failures (scope, subject, device)
        select v.scope, v.subject, p_device
        from (values ('account', p_account), ('address', p_address)) as v (scope, subject)
        where v.scope = 'account' or p_device is null
        returning id
    )
    select array_agg(i.id order by i.id) into v_ids from inserted i;
    return query select null::int, v_ids;
end
$$;

-- Sign-in's first step, with the browser's device cookies: counts the attempt
-- (see count_attempt) before any password is checked, then hands out the salt and parameters to
-- hash the candidate with — the account's own, or for an unknown email a
-- stable salt from a server secret. Never a hash.
create function paddock_sign_in_attempt(p_email text, p_address text, p_devices text[] default '{}')
returns table (
    retry_after integer,
    salt bytea,
    memory_kib integer,
    iterations integer,
    parallelism integer,
    hash_length integer,
    attempts bigint[]
)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_account text := paddock_private.account_subject(p_email);
    v_wait integer;
    v_ids bigint[];
    v_phc text[];
    v_params text[];
begin
    select c.retry_after, c.attempts into v_wait, v_ids
    from paddock_private.count_attempt(v_account, p_address,
        paddock_private.trusted_device(v_account, p_devices)) c;
    if v_wait is not null then
        return query select v_wait, null::bytea, null::int, null::int, null::int, null::int, null::bigint[];
        return;
    end if;
    select string_to_array(m.password_hash, '$') into v_phc
    from public.members m where m.email = lower(trim(p_email)) and m.removed_at is null;
    if v_phc is null or array_length(v_phc, 1) <> 6 or v_phc[2] <> 'argon2id' then
        return query
            select null::int,
                   substring(sha256(k.value || convert_to(lower(trim(p_email)), 'UTF8')) from 1 for 16),
                   19456, 2, 1, 32, v_ids
            from paddock_private.secrets k where k.name = 'unknown_email_salt';
        return;
    end if;
    v_params := regexp_match(v_phc[4], '^m=(\d+),t=(\d+),p=(\d+)$');
    return query select null::int,
        decode(paddock_private.padded_base64(v_phc[5]), 'base64'),
        v_params[1]::int, v_params[2]::int, v_params[3]::int,
        length(decode(paddock_private.padded_base64(v_phc[6]), 'base64')),
        v_ids;
end
$$;
revoke all on function paddock_sign_in_attempt(text, text, text[]) from public;

-- Finishes a sign-in: settles the attempt counted by paddock_sign_in_attempt
-- (no counted attempt, no comparison: the throttle cannot be skipped), then
-- compares the Argon2id output the app computed with the stored one. On a
-- match, forgets the failures of this kind of client and starts a session
-- under `p_token`: signed in, or — when the member has a second factor —
-- waiting five minutes for it (remembering the device the password step was
-- counted against). Otherwise records the failure on the account the email
-- names, if any. Removed members never match.
create function paddock_sign_in(
    p_email text, p_address text, p_hash bytea, p_attempts bigint[], p_token bytea,
    p_ip text, p_user_agent text
)
returns table (member_id uuid, organization_id uuid, second_factor boolean)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    m public.members%rowtype;
    v_account text := paddock_private.account_subject(p_email);
    v_second boolean;
    v_device text;
begin
    update paddock_private.sign_in_failures f set settled = true
    where f.id = (select x.id from paddock_private.sign_in_failures x
                  where x.id = any(p_attempts) and x.scope = 'account' and x.subject = v_account
                    and not x.settled
                  order by x.id limit 1)
    returning f.device into v_device;
    if not found then
        return;
    end if;
    select * into m from public.members x where x.email = lower(trim(p_email)) and x.removed_at is null;
    if m.id is not null and paddock_private.password_matches(m.password_hash, p_hash) then
        -- Forget this client's failures: its own attempts and the settled
        -- (compared and wrong) ones. Attempts still in flight settle by
        -- themselves; deleting them would fail a concurrent right password.
        delete from paddock_private.sign_in_failures f
        where f.id = any(p_attempts)
           or (f.scope = 'account' and f.subject = v_account and f.device is not distinct from v_device
               and f.settled);
        v_second := exists (select 1 from public.totp t where t.member_id = m.id and t.enabled_at is not null)
                 or exists (select 1 from public.passkeys k where k.member_id = m.id);
        perform paddock_private.new_session(p_token, m.id, m.organization_id,
            case when v_second then 'second_factor' else 'signed_in' end, p_ip, p_user_agent);
        if v_second then
            update paddock_private.sessions s set device = v_device where s.token_hash = sha256(p_token);
        else
            insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
            values (m.organization_id, m.id, 'sign_in', '', p_ip, left(p_user_agent, 256));
        end if;
        return query select m.id, m.organization_id, v_second;
        return;
    end if;
    perform paddock_private.record_failure(m.id, m.organization_id, 'wrong password',
        v_account, p_address, p_ip, p_user_agent);
end
$$;
revoke all on function paddock_sign_in(text, text, bytea, bigint[], bytea, text, text) from public;

-- A device cookie for the member signed in under `p_token` (a live, signed-in
-- session: only a completed sign-in mints one), unless one of `p_devices`
-- already is this account's; null otherwise.
create function paddock_device_cookie(p_token bytea, p_devices text[])
returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_account text;
    v_nonce text;
begin
    select paddock_private.account_subject(m.email) into v_account
    from paddock_private.sessions s
    join public.members m on m.id = s.member_id and m.removed_at is null
    where s.token_hash = sha256(p_token) and s.state = 'signed_in'
      and s.idle_expires_at > now() and s.absolute_expires_at > now();
    if v_account is null or paddock_private.trusted_device(v_account, p_devices) is not null then
        return null;
    end if;
    v_nonce := replace(gen_random_uuid()::text, '-', '');
    return v_nonce || '.' || paddock_private.device_mac(v_account, v_nonce);
end
$$;

-- Sign-up -------------------------------------------------------------------

drop function paddock_sign_in_lookup(text);
drop function paddock_record_sign_in_problem(text, text, text, text, text);
drop function paddock_create_organization(text, text, text);
drop function paddock_redeem_invite(bytea, text, text);

-- Creates an organization with its first member, an owner, signed in under `p_token`.
create function paddock_create_organization(
    p_name text, p_email text, p_password_hash text, p_token bytea, p_ip text, p_user_agent text
)
returns table (member_id uuid, organization_id uuid)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid;
    v_member uuid;
begin
    insert into public.organizations (name) values (p_name) returning id into v_org;
    insert into public.members (organization_id, email, password_hash, role)
        values (v_org, lower(p_email), p_password_hash, 'owner')
        returning id into v_member;
    perform paddock_private.new_session(p_token, v_member, v_org, 'signed_in', p_ip, p_user_agent);
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (v_org, v_member, 'signed_up', 'created the organization', p_ip, left(p_user_agent, 256)),
           (v_org, v_member, 'sign_in', '', p_ip, left(p_user_agent, 256));
    return query select v_member, v_org;
end
$$;
revoke all on function paddock_create_organization(text, text, text, bytea, text, text) from public;

-- Joins the organization of a valid, unused, unexpired invite, signed in under
-- `p_token`; no row when the code is not valid.
create function paddock_redeem_invite(
    p_code_hash bytea, p_email text, p_password_hash text, p_token bytea, p_ip text, p_user_agent text
)
returns table (member_id uuid, organization_id uuid)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_invite public.invites%rowtype;
    v_member uuid;
begin
    select * into v_invite from public.invites i
        where i.code_hash = p_code_hash and i.accepted_at is null and i.expires_at > now()
        for update;
    if not found then
        return;
    end if;
    insert into public.members (organization_id, email, password_hash, role)
        values (v_invite.organization_id, lower(p_email), p_password_hash, 'member')
        returning id into v_member;
    update public.invites set accepted_by = v_member, accepted_at = now() where id = v_invite.id;
    perform paddock_private.new_session(p_token, v_member, v_invite.organization_id, 'signed_in', p_ip, p_user_agent);
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (v_invite.organization_id, v_invite.created_by, 'invite_accepted', 'by ' || lower(p_email), null, null),
           (v_invite.organization_id, v_member, 'signed_up', 'joined with an invite', p_ip, left(p_user_agent, 256)),
           (v_invite.organization_id, v_member, 'invite_accepted', '', p_ip, left(p_user_agent, 256)),
           (v_invite.organization_id, v_member, 'sign_in', '', p_ip, left(p_user_agent, 256));
    return query select v_member, v_invite.organization_id;
end
$$;
revoke all on function paddock_redeem_invite(bytea, text, text, bytea, text, text) from public;

-- Nothing is executable by PUBLIC: the app role gets exactly what grants.sql
-- lists, now and for functions added later.
revoke execute on all functions in schema public from public;
revoke execute on all functions in schema paddock_private from public;
alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema paddock_private revoke execute on functions from public;
