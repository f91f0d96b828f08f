-- Organizations, members, invites, security events, sign-in throttling.
-- Isolation: every table with member data has row-level security enabled and
-- forced; policies read transaction-local settings that the request middleware
-- sets with set_config(..., true). With no setting, a policy matches nothing.

create function paddock_current_member() returns uuid
language sql stable
as $$ select nullif(current_setting('paddock.member_id', true), '')::uuid $$;

create function paddock_current_organization() returns uuid
language sql stable
as $$ select nullif(current_setting('paddock.organization_id', true), '')::uuid $$;

create function paddock_set_updated_at() returns trigger
language plpgsql
as $$ begin new.updated_at = now(); return new; end $$;

create table organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null constraint organizations_name_length check (char_length(name) between 1 and 100),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table members (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    email text not null constraint members_email_lowercase check (email = lower(email) and char_length(email) between 3 and 254),
    password_hash text not null,
    role text not null constraint members_role check (role in ('owner', 'member')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index members_email_key on members (email);
create index members_organization_id_idx on members (organization_id);

create table invites (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    code_hash bytea not null constraint invites_code_hash_key unique,
    created_by uuid not null references members (id) on delete cascade,
    expires_at timestamptz not null,
    accepted_by uuid references members (id) on delete set null,
    accepted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index invites_organization_id_idx on invites (organization_id);

create table security_events (
    id bigint generated always as identity primary key,
    organization_id uuid not null references organizations (id) on delete cascade,
    member_id uuid not null references members (id) on delete cascade,
    kind text not null,
    detail text not null default '',
    ip text,
    user_agent text,
    created_at timestamptz not null default now()
);
create index security_events_member_idx on security_events (member_id, created_at desc);

-- Failed sign-ins, kept server-side so a client that drops cookies is still
-- throttled. `subject` is a BLAKE2b hash of the email (scope 'account') or the
-- client address (scope 'address'). No member data: not row-level protected.
create table sign_in_failures (
    id bigint generated always as identity primary key,
    scope text not null constraint sign_in_failures_scope check (scope in ('account', 'address')),
    subject text not null,
    failed_at timestamptz not null default now()
);
create index sign_in_failures_lookup_idx on sign_in_failures (scope, subject, failed_at);

create trigger organizations_updated_at before update on organizations for each row execute function paddock_set_updated_at();
create trigger members_updated_at before update on members for each row execute function paddock_set_updated_at();
create trigger invites_updated_at before update on invites for each row execute function paddock_set_updated_at();

alter table organizations enable row level security;
alter table organizations force row level security;
create policy organizations_own on organizations for select
    using (id = paddock_current_organization());

alter table members enable row level security;
alter table members force row level security;
create policy members_same_organization on members for select
    using (organization_id = paddock_current_organization());

alter table invites enable row level security;
alter table invites force row level security;
create policy invites_same_organization on invites for select
    using (organization_id = paddock_current_organization());
create policy invites_created_by_owner on invites for insert
    with check (
        organization_id = paddock_current_organization()
        and created_by = paddock_current_member()
        and exists (
            select 1 from members m
            where m.id = paddock_current_member()
              and m.organization_id = paddock_current_organization()
              and m.role = 'owner'
        )
    );

alter table security_events enable row level security;
alter table security_events force row level security;
create policy security_events_own on security_events for select
    using (member_id = paddock_current_member());
create policy security_events_append_own on security_events for insert
    with check (member_id = paddock_current_member() and organization_id = paddock_current_organization());

-- Narrow entry points for the moments before a member is known. They run as the
-- schema owner with a fixed search_path and do exactly one thing each.

create function paddock_sign_in_lookup(p_email text)
returns table (member_id uuid, organization_id uuid, password_hash text)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select m.id, m.organization_id, m.password_hash
    from public.members m
    where m.email = lower(p_email)
$$;

create function paddock_create_organization(p_name text, p_email text, p_password_hash text)
returns table (member_id uuid, organization_id uuid)
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
    v_org uuid;
    v_member uuid;
begin
    insert into public.organizations (name) values (p_name) returning id into v_org;
    insert into public.members (organization_id, email, password_hash, role)
        values (v_org, lower(p_email), p_password_hash, 'owner')
        returning id into v_member;
    return query select v_member, v_org;
end
$$;

create function paddock_redeem_invite(p_code_hash bytea, p_email text, p_password_hash text)
returns table (member_id uuid, organization_id uuid)
language plpgsql security definer set search_path = pg_catalog, pg_temp
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
    insert into public.security_events (organization_id, member_id, kind, detail)
        values (v_invite.organization_id, v_invite.created_by, 'invite_accepted', 'by ' || lower(p_email));
    return query select v_member, v_invite.organization_id;
end
$$;

-- Records a failed or locked sign-in on the account it names, if that account exists.
create function paddock_record_sign_in_problem(p_email text, p_kind text, p_detail text, p_ip text, p_user_agent text)
returns void
language sql security definer set search_path = pg_catalog, pg_temp
as $$
    insert into public.security_events (organization_id, member_id, kind, detail, ip, user_agent)
    select m.organization_id, m.id, p_kind, p_detail, p_ip, p_user_agent
    from public.members m
    where m.email = lower(p_email) and p_kind in ('sign_in_failed', 'sign_in_locked')
$$;

revoke execute on function paddock_sign_in_lookup(text) from public;
revoke execute on function paddock_create_organization(text, text, text) from public;
revoke execute on function paddock_redeem_invite(bytea, text, text) from public;
revoke execute on function paddock_record_sign_in_problem(text, text, text, text, text) from public;
