package types

// AuthConfig is a registry credential: the body of POST /auth and, base64url
// JSON, the X-Registry-Auth header of pull and push.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// AuthResponse answers POST /auth.
type AuthResponse struct {
	Status        string
	IdentityToken string `json:",omitempty"`
}

// ImageHistoryItem is one entry of GET /images/{name}/history.
type ImageHistoryItem struct {
	ID        string `json:"Id"`
	Created   int64
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// ProgressDetail is a JSONMessage's machine-readable progress.
type ProgressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}
