//! The accounts file: who may log in, with which token, at what rate.
//!
//! ```toml
//! [[account]]
//! id = 1
//! name = "mm-1"
//! token_sha256 = "9f86d08188..."   # SHA-256 of the token, lowercase hex; never the token
//! rate_limit_per_sec = 10000        # sustained messages per second
//! burst = 1000                      # bucket size (default: rate_limit_per_sec / 10, at least 1)
//! admin = false                     # may send admin requests (deposits, marks, ...)
//! cancel_on_disconnect = "off"       # "session": every session of the account is cancel on
//!                                    # disconnect; "account": a session's end cancels the
//!                                    # whole account's orders (one mass cancel)
//! drop_copy_of = []                  # accounts a drop-copy session of this account watches
//! ```
//!
//! A file refused at start, naming the account: an id of 0 (the account of the log's own
//! records), one that appears twice, a `token_sha256` that is not 64 hex digits, a
//! `rate_limit_per_sec` or `burst` of 0, a `drop_copy_of` naming an account the file does not
//! have.
//!
//! A login carries a 32-byte token; the file holds the SHA-256 of those 32 bytes. Text tokens
//! are their bytes zero-padded to 32 ([`token_of`]). Plaintext tokens never enter the node's memory longer than one hash, and are never logged.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tpx_engine::AccountId;

/// What the end of a session's connection cancels (`cancel_on_disconnect` in the accounts
/// file; a `LoginWithOptions` with `cancel_on_disconnect` asks for `Session` on its connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelOnDisconnect {
    /// Nothing (unless the login asks for it).
    #[default]
    Off,
    /// Every order the session owns: one `CancelOrder` record each.
    Session,
    /// Every order of the account, whichever session placed it: one `MassCancel` record.
    Account,
}

impl CancelOnDisconnect {
    fn is_off(&self) -> bool {
        *self == CancelOnDisconnect::Off
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub id: AccountId,
    #[serde(default)]
    pub name: String,
    /// SHA-256 of the login token, lowercase hex.
    pub token_sha256: String,
    pub rate_limit_per_sec: u32,
    #[serde(default)]
    pub burst: Option<u32>,
    /// May send admin requests (deposits, withdrawals, marks, funding, liquidations, fee
    /// tiers); default false.
    #[serde(default)]
    pub admin: bool,
    /// Cancel on disconnect for every session of the account (default off).
    #[serde(default, skip_serializing_if = "CancelOnDisconnect::is_off")]
    pub cancel_on_disconnect: CancelOnDisconnect,
    /// A drop-copy account: its drop-copy sessions receive the execution reports of these
    /// accounts (empty: it may not open one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_copy_of: Vec<AccountId>,
}

impl AccountEntry {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or((self.rate_limit_per_sec / 10).max(1))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    #[serde(default)]
    pub account: Vec<AccountEntry>,
}

/// SHA-256 of `token` as lowercase hex.
pub fn token_hash_hex(token: &[u8]) -> String {
    let digest = Sha256::digest(token);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The loaded accounts, by id, with their token hashes decoded.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    by_id: HashMap<AccountId, (AccountEntry, [u8; 32])>,
}

/// Why a login was refused (typed; the session layer maps it to its reject code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    UnknownAccount,
    BadToken,
}

impl Accounts {
    pub fn from_file(file: AccountsFile) -> Result<Accounts, String> {
        let mut by_id = HashMap::new();
        for a in file.account {
            if a.id == 0 {
                // The account of the log's own records (`Tick`, `Checkpoint`).
                return Err(
                    "account id 0 is reserved (the log's own records); ids start at 1".into(),
                );
            }
            let hash = decode_hex32(&a.token_sha256)
                .ok_or_else(|| format!("account {}: token_sha256 is not 64 hex digits", a.id))?;
            if a.rate_limit_per_sec == 0 {
                return Err(format!("account {}: rate_limit_per_sec must be > 0", a.id));
            }
            if a.burst == Some(0) {
                return Err(format!(
                    "account {}: burst must be > 0 (orders a session may send at once)",
                    a.id
                ));
            }
            if by_id.insert(a.id, (a.clone(), hash)).is_some() {
                return Err(format!("account {} appears twice", a.id));
            }
        }
        for (a, _) in by_id.values() {
            if let Some(w) = a.drop_copy_of.iter().find(|w| !by_id.contains_key(w)) {
                return Err(format!(
                    "account {}: drop_copy_of names account {w}, which the file does not have",
                    a.id
                ));
            }
        }
        Ok(Accounts { by_id })
    }

    pub fn load(path: &Path) -> Result<Accounts, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let file: AccountsFile =
            toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        Accounts::from_file(file)
    }

    pub fn get(&self, id: AccountId) -> Option<&AccountEntry> {
        self.by_id.get(&id).map(|(a, _)| a)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every account, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &AccountEntry> + '_ {
        self.by_id.values().map(|(a, _)| a)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn max_id(&self) -> Option<AccountId> {
        self.by_id.keys().copied().max()
    }

    /// Checks `token` against the account's stored hash (compares every byte, so the time taken
    /// does not say how many matched).
    pub fn authenticate(&self, id: AccountId, token: &[u8]) -> Result<&AccountEntry, AuthError> {
        let (entry, want) = self.by_id.get(&id).ok_or(AuthError::UnknownAccount)?;
        let got = Sha256::digest(token);
        let diff = got
            .iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(entry)
        } else {
            Err(AuthError::BadToken)
        }
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim().as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A demo account and its plaintext token (for `tpx up`, which writes the hashes to a file and
/// hands the tokens to its own simulated clients).
#[derive(Clone, Debug)]
pub struct DemoAccount {
    pub id: AccountId,
    pub name: String,
    pub token: String,
    /// May send admin requests.
    pub admin: bool,
}

/// `count` demo accounts with ids `1..=count` and tokens `demo-token-<id>` (known, documented,
/// for demos only).
pub fn demo_accounts(count: u32) -> Vec<DemoAccount> {
    (1..=count)
        .map(|id| DemoAccount {
            id,
            name: format!("demo-{id}"),
            token: format!("demo-token-{id}"),
            admin: false,
        })
        .collect()
}

/// The 32-byte login token for a text token: its bytes, zero-padded (see
/// `tpx_client::token_from_str`).
pub fn token_of(text: &str) -> tpx_wire::codec::Token {
    let mut t = [0u8; 32];
    for (d, s) in t.iter_mut().zip(text.as_bytes()) {
        *d = *s;
    }
    tpx_wire::codec::Token(t)
}

/// The accounts file for demo accounts, each at `rate_limit_per_sec`.
pub fn demo_accounts_file(accounts: &[DemoAccount], rate_limit_per_sec: u32) -> AccountsFile {
    AccountsFile {
        account: accounts
            .iter()
            .map(|a| AccountEntry {
                id: a.id,
                name: a.name.clone(),
                token_sha256: token_hash_hex(&token_of(&a.token).0),
                rate_limit_per_sec,
                burst: Some(rate_limit_per_sec.max(1)),
                admin: a.admin,
                ..AccountEntry::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_test() {
        assert_eq!(
            token_hash_hex(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn authenticates_by_hash() {
        let demo = demo_accounts(2);
        let file = demo_accounts_file(&demo, 100);
        let text = toml::to_string(&file).unwrap();
        assert!(
            !text.contains("demo-token-1"),
            "plaintext token in the file"
        );
        let accounts = Accounts::from_file(toml::from_str(&text).unwrap()).unwrap();
        assert!(accounts
            .authenticate(1, &token_of("demo-token-1").0)
            .is_ok());
        assert_eq!(
            accounts
                .authenticate(1, &token_of("demo-token-2").0)
                .unwrap_err(),
            AuthError::BadToken
        );
        assert_eq!(
            accounts.authenticate(9, b"x").unwrap_err(),
            AuthError::UnknownAccount
        );
    }

    #[test]
    fn rejects_bad_hash() {
        let file = AccountsFile {
            account: vec![AccountEntry {
                id: 1,
                name: String::new(),
                token_sha256: "zz".into(),
                rate_limit_per_sec: 1,
                burst: None,
                admin: false,
                ..AccountEntry::default()
            }],
        };
        assert!(Accounts::from_file(file).is_err());
    }

    /// Found by starting `tpx node` with edited accounts files: `burst = 0` started and then
    /// refused the account's first orders `Throttled` and took a later one (a bucket that
    /// holds nothing); account id 0 started and traded, though 0 is the account of the log's
    /// own records (`Tick`, `Checkpoint`: PROTOCOL.md); a `drop_copy_of` naming an account
    /// the file does not have (a typo) started, its copies silently never coming.
    #[test]
    fn refuses_a_burst_of_zero_account_zero_and_a_drop_copy_of_no_account() {
        let entry = |id: AccountId| AccountEntry {
            id,
            token_sha256: "00".repeat(32),
            rate_limit_per_sec: 1_000,
            ..AccountEntry::default()
        };
        let refused =
            |account: Vec<AccountEntry>, key: &str| match Accounts::from_file(AccountsFile {
                account,
            }) {
                Ok(_) => panic!("accepted a file with a bad {key}"),
                Err(e) => assert!(e.contains(key), "{key}: {e}"),
            };
        refused(
            vec![AccountEntry {
                burst: Some(0),
                ..entry(1)
            }],
            "burst",
        );
        refused(vec![entry(0)], "account id 0");
        refused(
            vec![
                AccountEntry {
                    drop_copy_of: vec![2, 7],
                    ..entry(1)
                },
                entry(2),
            ],
            "drop_copy_of",
        );
        // The same accounts, well formed, load.
        let ok = vec![
            AccountEntry {
                drop_copy_of: vec![2],
                burst: Some(1),
                ..entry(1)
            },
            entry(2),
        ];
        assert_eq!(
            Accounts::from_file(AccountsFile { account: ok })
                .unwrap()
                .len(),
            2
        );
    }
}
