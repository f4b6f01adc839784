//! JWT-SVID, access token, client assertion and SET vectors.
