-- Passkeys (WebAuthn).
--
-- A ceremony's state (its challenge, and for sign-in the public keys it may be
-- answered with) is kept here, bound to one session, for five minutes, and
-- taken exactly once: any replica can finish what another began, and an answer
-- cannot be replayed. The app hands a state in only with its attestation, so an
-- SQL injection cannot plant one naming a key of its own. A passkey is added
-- only by a session that signed in within 10 minutes, with the app's word that
-- the browser's answer checked out; it is removed only after a recent sign-in,
-- and never while it is the last second factor an organization requires. The
-- app role can read its member's passkeys but no longer insert them.

create table paddock_private.passkey_ceremonies (
    session_id uuid not null references paddock_private.sessions (public_id) on delete cascade,
    purpose text not null
        constraint passkey_ceremonies_purpose check (purpose in ('register', 'second_factor', 'reauthenticate')),
    state jsonb not null,
    expires_at timestamptz not null,
    primary key (session_id, purpose)
);

-- Helpers (owner only) ---------------------------------------------------------

-- Starts, or starts again, session `p_session`'s ceremony for `p_purpose`, when
-- the app attested the state as `passkey_ceremony:{p_subject}:{purpose}:{hex
-- sha256 of the state}`.
create function paddock_private.begin_ceremony(
    p_session uuid, p_subject text, p_purpose text, p_state text, p_attestation bytea
) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
    if p_session is null or not paddock_private.attested(concat_ws(':', 'passkey_ceremony', p_subject, p_purpose,
            encode(sha256(convert_to(p_state, 'UTF8')), 'hex')), p_attestation) then
        return false;
    end if;
    insert into paddock_private.passkey_ceremonies (session_id, purpose, state, expires_at)
    values (p_session, p_purpose, p_state::jsonb, now() + interval '5 minutes')
    on conflict (session_id, purpose) do update
    set state = excluded.state, expires_at = excluded.expires_at;
    return true;
end
$$;

-- Ends session `p_session`'s ceremony for `p_purpose`: its state, unless it expired.
create function paddock_private.take_ceremony(p_session uuid, p_purpose text) returns text
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    with taken as (
        delete from paddock_private.passkey_ceremonies c
        where c.session_id = p_session and c.purpose = p_purpose
        returning c.state, c.expires_at
    )
    select state::text from taken where expires_at > now()
$$;

-- The live session waiting for its second factor whose secret is `p_token`.
create function paddock_private.pending_session(p_token bytea) returns uuid
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select s.public_id from paddock_private.sessions s
    where s.token_hash = sha256(p_token) and s.state = 'second_factor' and s.idle_expires_at > now()
$$;

-- Ceremonies of a signed-in session (adding a passkey, confirming it's you) ----

create function paddock_begin_passkey_ceremony(p_purpose text, p_state text, p_attestation bytea)
returns boolean
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    select case when p_purpose in ('register', 'reauthenticate')
        then paddock_private.begin_ceremony(paddock_private.identity_part(4),
                 paddock_private.identity_part(4)::text, p_purpose, p_state, p_attestation)
        else false end
$$;

create function paddock_take_passkey_ceremony(p_purpose text) returns text
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    select paddock_private.take_ceremony(paddock_private.identity_part(4), p_purpose)
    where p_purpose in ('register', 'reauthenticate')
$$;

-- The second step of sign-in with a passkey --------------------------------------

-- The passkeys of the member whose password the pending session `p_token` proved.
create function paddock_pending_passkeys(p_token bytea) returns setof text
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select k.passkey::text from paddock_private.sessions s
    join public.members m on m.id = s.member_id and m.removed_at is null
    join public.passkeys k on k.member_id = m.id
    where s.token_hash = sha256(p_token) and s.state = 'second_factor' and s.idle_expires_at > now()
    order by k.created_at
$$;

-- The subject attested for the pending session `p_token`: the hex SHA-256 of its
-- secret, as in the second factor's own attestation.
create function paddock_begin_second_factor_passkey(p_token bytea, p_state text, p_attestation bytea)
returns boolean
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    select paddock_private.begin_ceremony(paddock_private.pending_session(p_token),
        encode(sha256(p_token), 'hex'), 'second_factor', p_state, p_attestation)
$$;

create function paddock_take_second_factor_passkey(p_token bytea) returns text
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    select paddock_private.take_ceremony(paddock_private.pending_session(p_token), 'second_factor')
$$;

-- Adding, using and removing -------------------------------------------------------

-- Adds a passkey the app verified (attested as `passkey_added:{session}:{hex
-- credential id}:{hex sha256 of the passkey}`) for the current member, after a
-- sign-in within 10 minutes. 'done', 'step_up', 'duplicate', 'too_many' or 'refused'.
create function paddock_add_passkey(
    p_name text, p_credential_id bytea, p_passkey text, p_attestation bytea, p_ip text, p_user_agent text
) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid := paddock_private.identity_part(2);
    v_session uuid := paddock_private.identity_part(4);
begin
    if v_member is null or not paddock_private.attested(concat_ws(':', 'passkey_added', v_session,
            encode(p_credential_id, 'hex'), encode(sha256(convert_to(p_passkey, 'UTF8')), 'hex')), p_attestation) then
        return 'refused';
    end if;
    if not paddock_private.fresh() then
        return 'step_up';
    end if;
    perform 1 from public.members m where m.id = v_member for update;
    if (select count(*) from public.passkeys k where k.member_id = v_member) >= 20 then
        return 'too_many';
    end if;
    begin
        insert into public.passkeys (member_id, organization_id, name, credential_id, passkey)
        values (v_member, paddock_private.identity_part(3), p_name, p_credential_id, p_passkey::jsonb);
    exception when unique_violation then
        return 'duplicate';
    end;
    perform paddock_private.record('passkey_added', p_name, p_ip, p_user_agent);
    return 'done';
end
$$;

-- Records a use of the current member's passkey: the state the app verified it
-- in (attested as `passkey_used:{session}:{hex credential id}:{hex sha256 of
-- the passkey}`, its counter advanced) and the time.
create function paddock_passkey_used(p_credential_id bytea, p_passkey text, p_attestation bytea)
returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_session uuid := paddock_private.identity_part(4);
begin
    if not paddock_private.attested(concat_ws(':', 'passkey_used', v_session,
            encode(p_credential_id, 'hex'), encode(sha256(convert_to(p_passkey, 'UTF8')), 'hex')), p_attestation) then
        return false;
    end if;
    update public.passkeys k set passkey = p_passkey::jsonb, last_used_at = now()
    where k.member_id = paddock_private.identity_part(2) and k.credential_id = p_credential_id;
    return found;
end
$$;

-- Removes one of the current member's passkeys: only after a recent sign-in, and
-- not while the organization requires two-factor authentication and it is the
-- member's last second factor. 'done', 'step_up', 'required' or 'not_found'.
create function paddock_remove_passkey(p_passkey uuid, p_ip text, p_user_agent text) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid := paddock_private.identity_part(2);
    v_name text;
begin
    if v_member is null then
        return 'not_found';
    end if;
    if not paddock_private.fresh() then
        return 'step_up';
    end if;
    -- One second-factor change at a time per member (see paddock_disable_totp).
    perform 1 from public.members m where m.id = v_member for update;
    select k.name into v_name from public.passkeys k where k.id = p_passkey and k.member_id = v_member;
    if v_name is null then
        return 'not_found';
    end if;
    if (select o.require_two_factor from public.organizations o where o.id = paddock_private.identity_part(3))
       and not exists (select 1 from public.totp t where t.member_id = v_member and t.enabled_at is not null)
       and not exists (select 1 from public.passkeys k where k.member_id = v_member and k.id <> p_passkey) then
        return 'required';
    end if;
    delete from public.passkeys k where k.id = p_passkey and k.member_id = v_member;
    perform paddock_private.record('passkey_removed', v_name, p_ip, p_user_agent);
    return 'done';
end
$$;


revoke execute on all functions in schema public from public;
revoke execute on all functions in schema paddock_private from public;
