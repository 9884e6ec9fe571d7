"""/me: the self-service page every signed-in user has."""
