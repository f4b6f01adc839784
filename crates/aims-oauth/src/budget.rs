//! Per-address budgets for the front channel: how many password checks, or new
//! authorization requests, one client address may cause in a window.
//!
//! The per-name lock ([`crate::throttle`]) stops guessing one user's password; it does
//! not stop one machine from trying a common password on every name (spraying), nor from
//! filling the store with authorization requests. An [`AddressBudget`] bounds both per
//! source address: at most `capacity` uses in any `window` (a burst of `capacity`, then
//! one use every `window / capacity`), by the generic cell rate algorithm: one
//! timestamp per address, no timers.
//!
//! IPv4 addresses count one by one; IPv6 addresses by their /64 prefix (one host
//! usually holds a whole /64). The budgets live in this process: each node counts what
//! it serves. Behind a reverse proxy every request comes from the proxy's address, so
//! set the budget to 0 (off) or high enough for all users together.
//!
//! The table is bounded: expired entries are dropped when it is full, and when every
//! entry is still live the addresses not in it share one budget (logged). Letting them
//! through instead would make the budget worthless to whoever fills the table first
//! (an IPv6 /48 holds 65,536 /64s); sharing keeps every address in the table to its own
//! budget, and costs only new addresses during such a flood.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// The most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 100_000;

/// A per-address budget of `capacity` uses per `window_secs`.
#[derive(Debug)]
pub struct AddressBudget {
    /// Milliseconds one use adds to an address's account.
    interval_ms: i64,
    /// Milliseconds an account may run ahead of now (the window).
    window_ms: i64,
    max_addresses: usize,
    /// Per address: when its account is clear again (ms since the epoch).
    clear_at: Mutex<HashMap<AddressKey, i64>>,
    /// "Table full" is logged at most once a minute.
    full_warning: aims_core::RateGate,
}

/// The unit an address counts in: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(u128);

impl AddressKey {
    /// The account the addresses share that a full table has no room for (no address
    /// maps to it: IPv4 keys are below 2^32, IPv6 keys below 2^127 + 2^64).
    const OVERFLOW: AddressKey = AddressKey(u128::MAX);
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(u128::from(u32::from(v4))),
                // The /64 prefix, tagged so it cannot equal an IPv4 key.
                None => AddressKey((u128::from(v6) >> 64) | (1 << 127)),
            },
        }
    }
}

impl AddressBudget {
    /// `capacity` uses per `window_secs` per address; `None` when `capacity` or
    /// `window_secs` is 0 (no budget: nothing is limited).
    pub fn new(capacity: u32, window_secs: u32) -> Option<Self> {
        Self::with_max_addresses(capacity, window_secs, MAX_ADDRESSES)
    }

    /// Like [`AddressBudget::new`], tracking at most `max_addresses` addresses.
    pub fn with_max_addresses(
        capacity: u32,
        window_secs: u32,
        max_addresses: usize,
    ) -> Option<Self> {
        if capacity == 0 || window_secs == 0 {
            return None;
        }
        let window_ms = i64::from(window_secs).saturating_mul(1000);
        Some(Self {
            interval_ms: (window_ms / i64::from(capacity)).max(1),
            window_ms,
            max_addresses: max_addresses.max(1),
            clear_at: Mutex::new(HashMap::new()),
            full_warning: aims_core::RateGate::new(std::time::Duration::from_secs(60)),
        })
    }

    /// Takes one use for `ip` at `now` (Unix seconds): `Err(seconds)` to wait when its
    /// budget is spent.
    pub fn take(&self, ip: IpAddr, now: i64) -> Result<(), i64> {
        self.charge(ip, now).map(drop)
    }

    /// [`AddressBudget::take`], returning the account the use was charged to (the
    /// address's own, or the one shared by addresses a full table has no room for), for
    /// [`AddressBudget::give_back`].
    pub fn charge(&self, ip: IpAddr, now: i64) -> Result<AddressKey, i64> {
        let now_ms = now.saturating_mul(1000);
        let mut key = AddressKey::from(ip);
        let mut table = self.clear_at.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(&key) && table.len() >= self.max_addresses {
            table.retain(|_, clear| *clear > now_ms);
            if table.len() >= self.max_addresses {
                if let Some(held_back) = self.full_warning.admit() {
                    tracing::warn!(
                        target: "aims::oauth",
                        addresses = table.len(),
                        earlier_warnings_not_logged = held_back,
                        "per-address budget table full; new addresses share one budget"
                    );
                }
                key = AddressKey::OVERFLOW;
            }
        }
        let clear = table.get(&key).copied().unwrap_or(now_ms).max(now_ms);
        let next = clear.saturating_add(self.interval_ms);
        let ahead = next.saturating_sub(now_ms);
        if ahead > self.window_ms {
            let wait_ms = ahead - self.window_ms;
            return Err(wait_ms.saturating_add(999) / 1000);
        }
        table.insert(key, next);
        Ok(key)
    }

    /// Gives back one use to the account it was `charged` to (a login that turned out
    /// right).
    pub fn give_back(&self, charged: AddressKey, now: i64) {
        let now_ms = now.saturating_mul(1000);
        let key = charged;
        let mut table = self.clear_at.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(clear) = table.get_mut(&key) {
            *clear = clear.saturating_sub(self.interval_ms);
            if *clear <= now_ms {
                table.remove(&key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn off_when_zero() {
        assert!(AddressBudget::new(0, 600).is_none());
        assert!(AddressBudget::new(5, 0).is_none());
    }

    #[test]
    fn a_burst_then_one_use_per_interval() {
        // 3 per 60 s: one use every 20 s once the burst is spent.
        let b = AddressBudget::new(3, 60).unwrap();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(b.take(a, T0), Ok(()));
        }
        assert_eq!(b.take(a, T0), Err(20));
        assert_eq!(b.take(a, T0 + 19), Err(1));
        assert_eq!(b.take(a, T0 + 20), Ok(()));
        assert_eq!(b.take(a, T0 + 20), Err(20));
        // Another address has its own budget.
        assert_eq!(b.take(ip("192.0.2.2"), T0), Ok(()));
        // After a whole window the burst is back.
        for _ in 0..3 {
            assert_eq!(b.take(a, T0 + 80), Ok(()));
        }
        assert!(b.take(a, T0 + 80).is_err());
    }

    #[test]
    fn a_use_given_back_can_be_taken_again() {
        let b = AddressBudget::new(2, 60).unwrap();
        let a = ip("192.0.2.1");
        let charged = b.charge(a, T0).unwrap();
        b.take(a, T0).unwrap();
        assert!(b.take(a, T0).is_err());
        b.give_back(charged, T0);
        assert_eq!(b.take(a, T0), Ok(()));
        assert!(b.take(a, T0).is_err());
        // Giving back more than was taken saves nothing up.
        for _ in 0..5 {
            b.give_back(charged, T0);
        }
        b.take(a, T0).unwrap();
        b.take(a, T0).unwrap();
        assert!(b.take(a, T0).is_err());
    }

    #[test]
    fn ipv6_counts_by_64_prefix_and_mapped_ipv4_as_ipv4() {
        let b = AddressBudget::new(1, 60).unwrap();
        b.take(ip("2001:db8:1:2::1"), T0).unwrap();
        assert!(b.take(ip("2001:db8:1:2:ffff::9"), T0).is_err());
        b.take(ip("2001:db8:1:3::1"), T0).unwrap();
        b.take(ip("192.0.2.7"), T0).unwrap();
        assert!(b.take(ip("::ffff:192.0.2.7"), T0).is_err());
        // ::c000:207 is not the mapped form: its own /64 (::/64), not 192.0.2.7.
        b.take(ip("::c000:207"), T0).unwrap();
    }

    #[test]
    fn a_full_table_drops_expired_entries_then_new_addresses_share_one_budget() {
        let b = AddressBudget::with_max_addresses(1, 60, 2).unwrap();
        b.take(ip("192.0.2.1"), T0).unwrap();
        b.take(ip("192.0.2.2"), T0).unwrap();
        // Full of live entries: the addresses not in it share one budget.
        assert_eq!(b.take(ip("192.0.2.3"), T0), Ok(()));
        assert_eq!(b.take(ip("192.0.2.3"), T0), Err(60));
        assert_eq!(b.take(ip("2001:db8::1"), T0), Err(60));
        // Tracked addresses keep their own.
        assert!(b.take(ip("192.0.2.1"), T0).is_err());
        // Once the entries have expired they make room.
        b.take(ip("192.0.2.3"), T0 + 60).unwrap();
        assert!(b.take(ip("192.0.2.3"), T0 + 60).is_err());
        b.take(ip("2001:db8::1"), T0 + 60).unwrap();
    }

    /// A use charged to the shared account is given back to it: right logins through a
    /// full table do not drain the budget new addresses share.
    #[test]
    fn a_use_of_the_shared_budget_is_given_back_to_it() {
        let b = AddressBudget::with_max_addresses(1, 60, 1).unwrap();
        b.take(ip("192.0.2.1"), T0).unwrap();
        let shared = b.charge(ip("192.0.2.2"), T0).unwrap();
        assert_ne!(shared, AddressKey::from(ip("192.0.2.2")));
        assert!(b.take(ip("192.0.2.3"), T0).is_err());
        b.give_back(shared, T0);
        assert_eq!(b.take(ip("192.0.2.3"), T0), Ok(()));
    }
}
