"""Connect-your-CRM: the OAuth authorization-code flow (PKCE) for stored connections, and their token renewal."""
