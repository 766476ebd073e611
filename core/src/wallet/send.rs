//! Sends to an address: what a payment may be (network, dust, feerate, funds) and its build.
//!
//! Spendable coins are the wallet's unspent outputs that are confirmed or our own unconfirmed
//! change, minus the coins locked for channel opens in progress; incoming unconfirmed payments
//! are not spent (they can still be replaced by their sender).

use bdk_wallet::KeychainKind;
use bitcoin::{Address, Amount, FeeRate, Network, OutPoint, Transaction};

use super::{OnchainWallet, WalletError};

/// How much a send pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAmount {
    /// Exactly this much to the recipient; the fee comes on top, change comes back.
    Exact(Amount),
    /// Every spendable coin (locked ones excepted), less the fee: no change output.
    All,
}

/// The lowest feerate a send accepts: Bitcoin Core's default relay floor, 1 sat/vB.
pub const MIN_SEND_FEERATE: FeeRate = FeeRate::from_sat_per_kwu(250);

/// The highest feerate a send accepts, 1000 sat/vB: above it a typo is likelier than a wish.
pub const MAX_SEND_FEERATE: FeeRate = FeeRate::from_sat_per_kwu(250_000);

/// Refuses a feerate outside [`MIN_SEND_FEERATE`]..=[`MAX_SEND_FEERATE`].
pub fn check_send_fee_rate(rate: FeeRate) -> Result<FeeRate, WalletError> {
    if rate < MIN_SEND_FEERATE || rate > MAX_SEND_FEERATE {
        return Err(WalletError::FeeRateOutOfRange {
            sat_per_kwu: rate.to_sat_per_kwu(),
        });
    }
    Ok(rate)
}

/// The networks an address of unchecked network is valid for, for an error message.
fn networks_of(address: &Address<bitcoin::address::NetworkUnchecked>) -> String {
    let names: Vec<String> = [
        Network::Bitcoin,
        Network::Testnet,
        Network::Signet,
        Network::Regtest,
    ]
    .into_iter()
    .filter(|n| address.is_valid_for_network(*n))
    .map(|n| n.to_string())
    .collect();
    names.join(" or ")
}

impl OnchainWallet {
    /// Parses an address for this wallet's network; one of another network is
    /// [`WalletError::WrongNetwork`], naming both.
    pub fn parse_address(&self, address: &str) -> Result<Address, WalletError> {
        let unchecked = address
            .trim()
            .parse::<Address<bitcoin::address::NetworkUnchecked>>()
            .map_err(|e| WalletError::InvalidAddress {
                address: address.into(),
                reason: e.to_string(),
            })?;
        if !unchecked.is_valid_for_network(self.network) {
            return Err(WalletError::WrongNetwork {
                address: address.trim().into(),
                address_network: networks_of(&unchecked),
                ours: self.network,
            });
        }
        Ok(unchecked.assume_checked())
    }

    /// Outpoints a send must not spend: `locked` ones and incoming unconfirmed payments.
    pub(super) fn not_spendable(&self, locked: &[OutPoint]) -> (Vec<OutPoint>, u64) {
        let mut excluded = locked.to_vec();
        let mut spendable = 0u64;
        for u in self.wallet.list_unspent() {
            let trusted = u.chain_position.is_confirmed() || u.keychain == KeychainKind::Internal;
            if locked.contains(&u.outpoint) {
                continue;
            }
            if trusted {
                spendable += u.txout.value.to_sat();
            } else {
                excluded.push(u.outpoint);
            }
        }
        (excluded, spendable)
    }

    /// What a send can spend, in satoshis (see the module documentation).
    pub fn spendable_sat(&self, locked: &[OutPoint]) -> u64 {
        self.not_spendable(locked).1
    }

    /// Builds and signs (does not broadcast) a payment of `amount` to `address` at `fee_rate`,
    /// never spending `locked` coins. Record it with [`OnchainWallet::record_broadcast`]
    /// before broadcasting; [`OnchainWallet::forget`] it if the broadcast is refused.
    pub fn build_payment(
        &mut self,
        address: &Address,
        amount: SendAmount,
        fee_rate: FeeRate,
        locked: &[OutPoint],
    ) -> Result<Transaction, WalletError> {
        check_send_fee_rate(fee_rate)?;
        let script = address.script_pubkey();
        let dust_limit = script.minimal_non_dust();
        if let SendAmount::Exact(a) = amount {
            if a < dust_limit {
                return Err(WalletError::DustAmount {
                    amount: a.to_sat(),
                    dust_limit: dust_limit.to_sat(),
                });
            }
        }
        let (excluded, available) = self.not_spendable(locked);
        if amount == SendAmount::All && available == 0 {
            return Err(WalletError::InsufficientFunds {
                needed: dust_limit.to_sat(),
                available,
            });
        }
        let mut builder = self.wallet.build_tx();
        builder.fee_rate(fee_rate).unspendable(excluded);
        match amount {
            SendAmount::Exact(a) => {
                builder.add_recipient(script, a);
            }
            SendAmount::All => {
                builder.drain_wallet().drain_to(script);
            }
        }
        let psbt = builder.finish().map_err(super::build_error(available))?;
        self.sign_and_persist(psbt)
    }

    /// Forgets a recorded transaction the network refused: it leaves the balances and its
    /// coins are spendable again.
    pub fn forget(&mut self, tx: &Transaction, now: u64) -> Result<(), WalletError> {
        self.wallet.cancel_tx(tx);
        self.wallet.apply_evicted_txs([(tx.compute_txid(), now)]);
        self.persist()
    }
}
