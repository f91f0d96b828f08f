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
        left join public.credentials c
            on p_with_credentials and c.member_id = (select public.paddock_current_member())
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
begin
    if not exists (select 1 from public.paddock_authenticate(p_token)) then
        return;
    end if;
    return query
        with used as (
            select c.id, c.label, c.last_used_at
            from public.credentials c
            where c.id = any(p_credentials)
              and c.member_id = (select public.paddock_current_member())
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
            select (select public.paddock_current_organization()), (select public.paddock_current_member()),
                   'credential_used', u.label || ': ' || p_purpose, p_ip, left(p_user_agent, 256)
            from used u
        )
        select u.id from used u;
end
$$;
revoke all on function paddock_record_key_uses(bytea, uuid[], text, boolean, text, text) from public;
