//! Sealing a key pair into its row, and unsealing it for exactly one use.
//!
//! The associated data of each sealed value names its organization, member,
//! credential and field, so a sealed value copied into another row does not open.
//! Unsealed keys live in [`ApiKeys`] (secrecy types, zeroized on drop) and are
//! never cached: each use opens them again and is recorded as a security event
//! before the keys are handed out ([`Unrecorded`]).

use secrecy::{ExposeSecret, SecretString};

use crate::{
    alpaca::ApiKeys,
    db::credentials::Credential,
    domain::{CredentialId, MemberId, OrganizationId},
    seal::{Binding, Field, SealError, Sealed, Sealer},
    totp::TotpSecret,
};

/// Both sealed halves of a key pair, and the key id that sealed them.
pub struct SealedPair {
    pub key_id: Sealed,
    pub secret: Sealed,
    pub seal_key_version: String,
}

fn binding(
    organization: OrganizationId,
    member: MemberId,
    credential: CredentialId,
    field: Field,
) -> Binding {
    Binding {
        organization_id: organization.0,
        member_id: member.0,
        credential_id: credential.0,
        field,
    }
}

/// Seals a key pair for the row `(organization, member, credential)`.
pub fn seal_pair(
    sealer: &dyn Sealer,
    organization: OrganizationId,
    member: MemberId,
    credential: CredentialId,
    keys: &ApiKeys,
) -> Result<SealedPair, SealError> {
    Ok(SealedPair {
        key_id: sealer.seal(
            keys.key_id(),
            &binding(organization, member, credential, Field::KeyId),
        )?,
        secret: sealer.seal(
            keys.secret(),
            &binding(organization, member, credential, Field::Secret),
        )?,
        seal_key_version: sealer.sealing_key_id().as_str().to_owned(),
    })
}

/// Where a stored credential's `field` lives: the associated data it is sealed to.
fn place_of(credential: &Credential, field: Field) -> Binding {
    binding(
        credential.organization_id,
        credential.member_id,
        credential.id,
        field,
    )
}

/// Opens a stored credential's keys. Prefer [`unseal`], whose keys wait for their use to be recorded.
pub fn open(sealer: &dyn Sealer, credential: &Credential) -> Result<ApiKeys, SealError> {
    let at = |field| place_of(credential, field);
    let key_id: SecretString = sealer.open(&credential.sealed_key_id, &at(Field::KeyId))?;
    let secret: SecretString = sealer.open(&credential.sealed_secret, &at(Field::Secret))?;
    Ok(ApiKeys::new(key_id.expose_secret(), secret.expose_secret()))
}

/// Re-seals a credential under the sealer's current key (for `keys rewrap`).
pub fn rewrap(sealer: &dyn Sealer, credential: &Credential) -> Result<SealedPair, SealError> {
    let at = |field| place_of(credential, field);
    Ok(SealedPair {
        key_id: sealer.rewrap(&credential.sealed_key_id, &at(Field::KeyId))?,
        secret: sealer.rewrap(&credential.sealed_secret, &at(Field::Secret))?,
        seal_key_version: sealer.sealing_key_id().as_str().to_owned(),
    })
}

/// Why keys are unsealed, as the `credential_used` event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Reading an account for the portfolio or account page.
    Portfolio,
    /// An order action: place, cancel, close, cancel all, close all.
    Order,
    /// Reading the account's activity.
    History,
    /// Exporting the account's activity as CSV.
    HistoryExport,
}

impl Purpose {
    /// The words in the event's detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portfolio => "portfolio",
            Self::Order => "order",
            Self::History => "history",
            Self::HistoryExport => "history export",
        }
    }

    /// Whether the use changes the account, so earlier reads of it are stale.
    pub fn changes_account(self) -> bool {
        self == Self::Order
    }
}

/// Key pairs opened for one use each, not yet usable: their uses must be
/// recorded first ([`Unrecorded::recorded`] takes what the database recorded).
pub struct Unrecorded(Vec<(CredentialId, Option<ApiKeys>)>);

impl Unrecorded {
    /// The credentials whose keys opened: the uses to record.
    pub fn to_record(&self) -> Vec<CredentialId> {
        self.0
            .iter()
            .filter(|(_, keys)| keys.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The keys, in the order unsealed, of the credentials whose use was
    /// recorded; `None` where the keys did not open or no use was recorded.
    pub fn recorded(self, recorded: &[CredentialId]) -> Vec<Option<ApiKeys>> {
        self.0
            .into_iter()
            .map(|(id, keys)| keys.filter(|_| recorded.contains(&id)))
            .collect()
    }
}

/// Opens the keys of `credentials` in memory, one use each. Keys that do not
/// open are logged and left out. Nothing may use them before their uses are
/// recorded (see [`crate::db::request::open`]).
pub fn unseal(sealer: &dyn Sealer, credentials: &[&Credential]) -> Unrecorded {
    Unrecorded(
        credentials
            .iter()
            .map(|credential| {
                let keys = open(sealer, credential)
                    .inspect_err(|e| {
                        tracing::error!(credential_id = %credential.id, error = %e, "unsealing failed");
                    })
                    .ok();
                (credential.id, keys)
            })
            .collect(),
    )
}

/// The display form of a key id: `PK…WXYZ` (environment prefix, last four).
pub fn masked_key(credential: &Credential) -> String {
    let prefix = match credential.environment {
        crate::domain::Environment::Paper => "PK",
        crate::domain::Environment::Live => "AK",
    };
    format!("{prefix}…{}", credential.key_id_last4)
}

/// Where a member's TOTP secret lives: its own field, bound to the member.
fn totp_place(organization: OrganizationId, member: MemberId) -> Binding {
    binding(
        organization,
        member,
        CredentialId(member.0),
        Field::TotpSecret,
    )
}

/// Seals a member's TOTP secret; returns it with the key id that sealed it.
pub fn seal_totp(
    sealer: &dyn Sealer,
    organization: OrganizationId,
    member: MemberId,
    secret: &TotpSecret,
) -> Result<(Sealed, String), SealError> {
    let text: SecretString = crate::attest::hex(secret.expose_bytes()).into();
    Ok((
        sealer.seal(&text, &totp_place(organization, member))?,
        sealer.sealing_key_id().as_str().to_owned(),
    ))
}

/// Opens a member's sealed TOTP secret.
pub fn open_totp(
    sealer: &dyn Sealer,
    organization: OrganizationId,
    member: MemberId,
    sealed: &Sealed,
) -> Result<TotpSecret, SealError> {
    let text: SecretString = sealer.open(sealed, &totp_place(organization, member))?;
    let hex = text.expose_secret();
    let bytes = (0..hex.len())
        .step_by(2)
        .filter_map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    Ok(TotpSecret::from_bytes(bytes))
}

/// Re-seals a TOTP secret under the sealer's current key (for `keys rewrap`).
pub fn rewrap_totp(
    sealer: &dyn Sealer,
    organization: OrganizationId,
    member: MemberId,
    sealed: &Sealed,
) -> Result<Sealed, SealError> {
    sealer.rewrap(sealed, &totp_place(organization, member))
}
