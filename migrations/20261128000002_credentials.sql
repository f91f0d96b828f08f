-- Alpaca credentials, sealed at rest (see src/seal.rs for the format). Each
-- row is visible only to its member, inside that member's organization.

create table credentials (
    id uuid primary key,
    organization_id uuid not null references organizations (id) on delete cascade,
    member_id uuid not null references members (id) on delete cascade,
    label text not null constraint credentials_label_length check (char_length(label) between 1 and 64),
    environment text not null constraint credentials_environment check (environment in ('paper', 'live')),
    sealed_key_id bytea not null,
    sealed_secret bytea not null,
    key_id_last4 text not null,
    account_number text not null,
    seal_key_version text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_used_at timestamptz,
    constraint credentials_member_account_key unique (member_id, account_number)
);
create index credentials_seal_key_version_idx on credentials (seal_key_version);

create trigger credentials_updated_at before update on credentials for each row execute function paddock_set_updated_at();

alter table credentials enable row level security;
alter table credentials force row level security;
create policy credentials_own on credentials for all
    using (member_id = paddock_current_member() and organization_id = paddock_current_organization())
    with check (member_id = paddock_current_member() and organization_id = paddock_current_organization());
