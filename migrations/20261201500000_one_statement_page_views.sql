-- A page view in as few round trips as the audit promise allows (issue 11).
--
-- A portfolio or account page needs who is asking and their credentials, and
-- one recorded use per key it unseals (none when it shows a cached read). One
-- statement does both, and needs no transaction around it: it presents the
-- session's secret to paddock_authenticate itself, so the identity lives
-- exactly as long as the statement, and it commits (durably) before the keys
-- are used. When the page cannot know yet which keys it will use (a cached read
-- may serve it), it reads first and records in a second call. The function is
-- SECURITY INVOKER: everything after the identity check runs as the app role,
-- so row-level security still decides which rows it reads and writes — it can
-- do nothing the app role could not do with that secret anyway.

-- When an order action last changed the account behind a credential: with the
-- sealed values, the version of the account that cached reads belong to, read
-- with every page on every server.
alter table credentials add column account_changed_at timestamptz;

-- Who is asking, and the member's credentials — all of them (`p_credentials`
-- null) or those listed — oldest first: one row per credential, or one row
-- with null credential columns when there are none. No row: no live session
-- has that secret. With `p_use`, also one `credential_used` event per
-- credential returned (their own label and `p_use`): its keys may be used once
-- the statement has committed (a member who must set up a second factor first
-- is shown nothing, so nothing is recorded). "Last used" (shown to the minute) is written
-- only when that minute changes; for `p_changes` (an order action) always, with
-- `account_changed_at`, which tells every server that its cached reads of the
-- account are out of date.
create function paddock_open_request(
    p_token bytea, p_credentials uuid[], p_use text, p_changes boolean,
    p_ip text, p_user_agent text
)
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
language plpgsql volatile security invoker
as $$
declare
    who record;
    v_stale boolean := false;
    -- With p_use: exactly the credentials recorded (none added meanwhile).
    v_only uuid[] := p_credentials;
begin
    select * into who from public.paddock_authenticate(p_token);
    if not found then
        return;
    end if;
    -- A member who must set up a second factor first is shown no page: no use.
    if p_use is not null
       and not (who.require_two_factor and not who.totp_enabled and who.passkeys = 0) then
        with used as (
            select c.id, c.label, c.last_used_at
            from public.credentials c
            where c.member_id = who.member_id
              and (p_credentials is null or c.id = any(p_credentials))
        ), recorded as (
            insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
            select who.organization_id, who.member_id, 'credential_used', u.label || ': ' || p_use,
                   p_ip, left(p_user_agent, 256)
            from used u
        )
        select coalesce(array_agg(u.id), '{}'),
               coalesce(bool_or(u.last_used_at is null
                   or date_trunc('minute', u.last_used_at) < date_trunc('minute', now())), false)
        into v_only, v_stale
        from used u;
        if p_changes or v_stale then
            update public.credentials c
            set last_used_at = now(),
                account_changed_at = case when p_changes then now() else c.account_changed_at end
            where c.member_id = who.member_id and c.id = any(v_only);
        end if;
    end if;
    return query
        select who.member_id, who.organization_id, who.organization_name, who.email, who.role,
               who.session_id, who.authenticated_at, who.totp_enabled, who.passkeys,
               who.require_two_factor,
               c.id, c.label, c.environment, c.sealed_key_id, c.sealed_secret, c.key_id_last4,
               c.account_number, c.seal_key_version, c.created_at, c.account_changed_at, c.last_used_at
        from (select 1) as one
        left join public.credentials c
            on c.member_id = who.member_id and (v_only is null or c.id = any(v_only))
        order by c.created_at, c.label;
end
$$;
revoke all on function paddock_open_request(bytea, uuid[], text, boolean, text, text) from public;
