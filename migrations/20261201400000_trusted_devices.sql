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

insert into paddock_private.secrets (name, value)
select 'device', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
on conflict (name) do nothing;

-- The trusted device an attempt was counted against (its nonce); null for an
-- untrusted client.
alter table paddock_private.sign_in_failures add column device text;
-- For a session waiting for its second factor: the device its password step
-- was counted against, so the second step is counted the same way.
alter table paddock_private.sessions add column device text;

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

-- Sign-in's first step, as before, with the browser's device cookies: counts
-- the attempt (see count_attempt), then hands out the salt and parameters to
-- hash the candidate with — the account's own, or for an unknown email a
-- stable salt from a server secret. Never a hash.
drop function paddock_sign_in_attempt(text, text);
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

-- The second step is counted like the first: on the same device, or not.
create or replace function paddock_second_factor_attempt(p_token bytea, p_address text)
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

-- Finishes a sign-in (as before): settles the counted attempt, compares the
-- Argon2id output, and on a match forgets the failures of this kind of client
-- and starts a session under `p_token` (waiting for the second factor, which
-- remembers the device, when the member has one).
create or replace function paddock_sign_in(
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
        delete from paddock_private.sign_in_failures f
        where f.id = any(p_attempts)
           or (f.scope = 'account' and f.subject = v_account and f.device is not distinct from v_device);
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

-- Records a failed step on the member's log, and a lockout when this failure
-- reached a limit of its kind of client: the kind of the attempt this
-- transaction has just settled (every caller settles one before it calls).
create or replace function paddock_private.record_failure(
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

-- Completing the second factor forgets the failures of its own kind of client.
create or replace function paddock_private.promote(p_old bytea, p_new bytea, p_how text, p_ip text, p_user_agent text)
returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    s paddock_private.sessions%rowtype;
begin
    delete from paddock_private.sessions x where x.token_hash = p_old returning * into s;
    perform paddock_private.new_session(p_new, s.member_id, s.organization_id, 'signed_in', p_ip, p_user_agent);
    delete from paddock_private.sign_in_failures f
    where f.scope = 'account' and f.device is not distinct from s.device
      and f.subject = paddock_private.account_subject(
        (select m.email from public.members m where m.id = s.member_id));
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    values (s.organization_id, s.member_id, 'sign_in', p_how, p_ip, left(p_user_agent, 256));
end
$$;

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

revoke execute on all functions in schema public from public;
revoke execute on all functions in schema paddock_private from public;
