-- Single-use tokens of the confirmation forms that change an account (close a
-- position, cancel all orders, close all positions): a token is recorded when
-- its form is acted on, so a second submission of the same form (double
-- click, back button) is recognized and changes nothing. Only a hash is kept.

create table action_tokens (
    member_id uuid not null references members (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    token_hash bytea not null,
    created_at timestamptz not null default now(),
    constraint action_tokens_pkey primary key (member_id, token_hash)
);
create index action_tokens_created_at_idx on action_tokens (created_at);

alter table action_tokens enable row level security;
alter table action_tokens force row level security;
create policy action_tokens_own on action_tokens for all
    using (member_id = (select paddock_current_member()) and organization_id = (select paddock_current_organization()))
    with check (member_id = (select paddock_current_member()) and organization_id = (select paddock_current_organization()));
