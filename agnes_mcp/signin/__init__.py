"""Sign-in for people: /auth/login (token or OIDC), /auth/logout."""
