-- A page view in as few round trips as the audit promise allows (issue 11).
--
-- A portfolio or account page needs who is asking and their credentials, then
-- (unless Alpaca's answer is reused from the short cache) one recorded use per
-- key it unseals. Each is now one statement that needs no transaction around
-- it: both functions present the session's secret to paddock_authenticate
-- themselves, so the identity lives exactly as long as their own statement.
-- They are SECURITY INVOKER: everything after the identity check runs as the
-- app role, so row-level security still decides which rows they see and write
-- — they can do nothing the app role could not do with that secret anyway.

-- When an order action last changed the account behind a credential: with the
-- sealed values, the version of the account that cached reads belong to, read
-- with every page on every server.
alter table credentials add column account_changed_at timestamptz;

-- Who is asking, and (when p_with_credentials) the member's credentials, oldest
-- first: one row per credential, or one row with null credential columns when
-- there are none or none were asked for. No row: no live session has that secret.
create function paddock_open_request(p_token bytea, p_with_credentials boolean)
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
    require_two_factor boolean,
    credential_id uuid,
    label text,
    environment text,
    sealed_key_id bytea,
    sealed_secret bytea,
    key_id_last4 text,
    account_number text,
    seal_key_version text,
    created_at timestamptz,
    account_changed_at timestamptz,
    last_used_at timestamptz
)
language plpgsql volatile security invoker set search_path = pg_catalog, public, pg_temp
as $$
declare
    who record;
begin
    select * into who from public.paddock_authenticate(p_token);
    if not found then
        return;
    end if;
    return query
        select who.member_id, who.organization_id, who.organization_name, who.email, who.role,
               who.session_id, who.authenticated_at, who.totp_enabled, who.passkeys,
               who.require_two_factor,
               c.id, c.label, c.environment, c.sealed_key_id, c.sealed_secret, c.key_id_last4,
               c.account_number, c.seal_key_version, c.created_at, c.account_changed_at, c.last_used_at
        from (select 1) as one
        left join public.credentials c on p_with_credentials and c.member_id = who.member_id
        order by c.created_at, c.label;
end
$$;
revoke all on function paddock_open_request(bytea, boolean) from public;

-- Records one `credential_used` event per credential in `p_credentials` that
-- belongs to the member whose session secret is `p_token`, with the
-- credential's own label and `p_purpose`, and returns those credentials' ids:
-- the keys the caller may use once this statement has committed. "Last used"
-- (shown to the minute) is written only when that minute changes; for
-- `p_changes` (an order action) always, with `account_changed_at`, which tells
-- every server that its cached reads of the account are out of date.
create function paddock_record_key_uses(
    p_token bytea, p_credentials uuid[], p_purpose text, p_changes boolean,
    p_ip text, p_user_agent text
)
returns setof uuid
language plpgsql volatile security invoker set search_path = pg_catalog, public, pg_temp
as $$
declare
    who record;
begin
    select * into who from public.paddock_authenticate(p_token);
    if not found then
        return;
    end if;
    return query
        with used as (
            select c.id, c.label, c.last_used_at
            from public.credentials c
            where c.id = any(p_credentials) and c.member_id = who.member_id
        ), touched as (
            update public.credentials c
            set last_used_at = now(),
                account_changed_at = case when p_changes then now() else c.account_changed_at end
            from used u
            where c.id = u.id
              and (p_changes or u.last_used_at is null
                   or date_trunc('minute', u.last_used_at) < date_trunc('minute', now()))
        ), recorded as (
            insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
            select who.organization_id, who.member_id, 'credential_used', u.label || ': ' || p_purpose,
                   p_ip, left(p_user_agent, 256)
            from used u
        )
        select u.id from used u;
end
$$;
revoke all on function paddock_record_key_uses(bytea, uuid[], text, boolean, text, text) from public;

-- The identity check, cheaper (the same checks): these were SQL functions,
-- which PostgreSQL parses and plans again at every call when they are SECURITY
-- DEFINER — and the policies call them in every statement, several times.
-- PL/pgSQL keeps their plans for the connection's life. The MAC is now checked
-- over the parts as sent, before any cast: an identity that is not exactly
-- what paddock_authenticate wrote never matches, so no cast can fail and no
-- exception block (a subtransaction per call) is needed.

create or replace function paddock_private.identity_mac(p_member uuid, p_organization uuid, p_session uuid)
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

create or replace function paddock_private.identity_part(n int)
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

create or replace function paddock_current_member() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(2); end $$;

create or replace function paddock_current_organization() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(3); end $$;

create or replace function paddock_current_session() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$ begin return paddock_private.identity_part(4); end $$;
