//! Reading members' accounts for the portfolio and account pages: reuse of a
//! recent read, sharing of one in flight, and otherwise unsealing (each use
//! recorded, committed first) and calling Alpaca — all while the request holds
//! no transaction.

use std::sync::Arc;

use crate::{
    alpaca::Environment,
    db::credentials::Credential,
    error::AppError,
    portfolio::{
        self, Period, Snapshot,
        cache::{Claim, Key, version_of},
    },
    state::AppState,
    vault::Purpose,
    web::{
        service::{UNSEAL_FAILED, deadline_passed, describe},
        tenant::{Credentials, Ctx, Released},
    },
};

/// The outcome of one account's read.
pub type Fetched = Result<Arc<Snapshot>, String>;

/// The reuse key of one account read.
fn read_of(ctx: &Ctx, credential: &Credential, period: Period, with_orders: bool) -> Key {
    Key {
        member: ctx.member.id,
        credential: credential.id,
        version: version_of(&[
            credential.sealed_key_id.as_bytes(),
            credential.sealed_secret.as_bytes(),
            &credential
                .account_changed_at
                .map_or(0, |at| at.unix_timestamp_nanos())
                .to_le_bytes(),
        ]),
        period,
        with_orders,
    }
}

/// Reads every account the page shows concurrently: reusing a recent read,
/// joining one in flight, or — for the rest — unsealing their keys (uses
/// recorded, committed first: by the request's own statement when every view
/// calls Alpaca, else in one more) and calling Alpaca, sharing the calls with
/// any view that joins meanwhile. A view whose leader gave up tries once more.
pub async fn load_accounts(
    state: &AppState,
    ctx: &Ctx,
    released: &mut Released,
    shown: &Credentials,
    period: Period,
    with_orders: bool,
) -> Result<Vec<Fetched>, AppError> {
    let deadline = state.settings.alpaca_deadline;
    let credentials = shown.list();
    let mut recorded = shown.unseal_recorded(state.sealer.as_ref());
    let mut results: Vec<Option<Fetched>> = vec![None; credentials.len()];
    for _round in 0..2 {
        let (mut leads, mut joins) = (Vec::new(), Vec::new());
        for (i, credential) in credentials.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            match released
                .accounts()
                .claim(read_of(ctx, credential, period, with_orders))
            {
                Claim::Reuse(snapshot) => results[i] = Some(Ok(snapshot)),
                Claim::Join(joined) => joins.push((i, joined)),
                Claim::Lead(flight) => leads.push((i, flight)),
            }
        }
        let to_unseal: Vec<&Credential> = leads.iter().map(|(i, _)| &credentials[*i]).collect();
        let keys = match recorded.take() {
            Some(mut keys) => leads.iter().map(|(i, _)| keys[*i].take()).collect(),
            None if to_unseal.is_empty() => Vec::new(),
            None => {
                released
                    .unseal(
                        state.sealer.as_ref(),
                        &to_unseal,
                        Purpose::Portfolio,
                        &ctx.origin,
                    )
                    .await?
            }
        };
        let tasks: Vec<_> = leads
            .into_iter()
            .zip(keys)
            .map(|((i, flight), keys)| {
                let client = released.alpaca().clone();
                let environment: Environment = credentials[i].environment;
                let task = tokio::spawn(async move {
                    let outcome = match keys {
                        None => Err(UNSEAL_FAILED.to_owned()),
                        Some(keys) => portfolio::fetch(
                            &client,
                            environment,
                            keys,
                            period,
                            with_orders,
                            deadline,
                        )
                        .await
                        .map(Arc::new)
                        .map_err(|e| describe(&e)),
                    };
                    flight.finish(&outcome);
                    outcome
                });
                (i, task)
            })
            .collect();
        for (i, task) in tasks {
            results[i] = Some(task.await?);
        }
        for (i, joined) in joins {
            results[i] = match tokio::time::timeout(deadline, joined.outcome()).await {
                Ok(outcome) => outcome,
                Err(_) => Some(Err(deadline_passed().user_message())),
            };
        }
        if results.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(deadline_passed().user_message())))
        .collect())
}
