//! Time-window checks shared by the profiles. All times are Unix seconds from a
//! [`aims_core::Clock`]; `leeway` absorbs clock skew between parties.

use crate::JoseError;

/// Default clock-skew allowance, in seconds.
pub const DEFAULT_LEEWAY: i64 = 30;

/// `exp` must not have passed: valid while `now < exp + leeway` (RFC 7519 section 4.1.4).
pub fn check_exp(exp: i64, now: i64, leeway: i64) -> Result<(), JoseError> {
    if now >= exp.saturating_add(leeway) {
        Err(JoseError::Expired { exp, now })
    } else {
        Ok(())
    }
}

/// `nbf` must have been reached (RFC 7519 section 4.1.5).
pub fn check_nbf(nbf: i64, now: i64, leeway: i64) -> Result<(), JoseError> {
    if now.saturating_add(leeway) < nbf {
        Err(JoseError::NotYetValid { nbf, now })
    } else {
        Ok(())
    }
}

/// `iat` must lie within `[now - max_age - leeway, now + leeway]`.
pub fn check_iat_window(iat: i64, now: i64, max_age: i64, leeway: i64) -> Result<(), JoseError> {
    if iat > now.saturating_add(leeway) {
        return Err(JoseError::IssuedInFuture { iat, now });
    }
    if iat < now.saturating_sub(max_age).saturating_sub(leeway) {
        return Err(JoseError::TooOld { iat, now });
    }
    Ok(())
}

/// `exp` must not be further than `max` seconds (plus leeway) from now.
pub fn check_max_lifetime(exp: i64, now: i64, max: i64, leeway: i64) -> Result<(), JoseError> {
    if exp > now.saturating_add(max).saturating_add(leeway) {
        Err(JoseError::LifetimeTooLong { exp, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert!(check_exp(100, 99, 0).is_ok());
        assert_eq!(
            check_exp(100, 100, 0),
            Err(JoseError::Expired { exp: 100, now: 100 })
        );
        assert!(check_exp(100, 105, 10).is_ok());
        assert!(check_nbf(100, 100, 0).is_ok());
        assert_eq!(
            check_nbf(100, 99, 0),
            Err(JoseError::NotYetValid { nbf: 100, now: 99 })
        );
        assert!(check_iat_window(100, 100, 60, 0).is_ok());
        assert_eq!(
            check_iat_window(101, 100, 60, 0),
            Err(JoseError::IssuedInFuture { iat: 101, now: 100 })
        );
        assert_eq!(
            check_iat_window(39, 100, 60, 0),
            Err(JoseError::TooOld { iat: 39, now: 100 })
        );
        assert!(check_max_lifetime(160, 100, 60, 0).is_ok());
        assert_eq!(
            check_max_lifetime(161, 100, 60, 0),
            Err(JoseError::LifetimeTooLong { exp: 161, max: 60 })
        );
        // Extreme values do not overflow.
        assert!(check_exp(i64::MAX, i64::MAX - 1, i64::MAX).is_ok());
    }
}
