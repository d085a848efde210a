// Package types holds the Docker Engine API wire types estiba speaks: the
// subset of fields the docker CLI 28 sends and reads, with Docker's JSON
// names. They are written here rather than imported from
// github.com/docker/docker because that module drags in most of moby; the
// field names and shapes follow the Engine API 1.41+ documentation.
package types

import "time"

// APIVersion is the newest Engine API version served; MinAPIVersion the oldest.
const (
	APIVersion    = "1.47"
	MinAPIVersion = "1.24"
)

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Message string `json:"message"`
}

// Version answers GET /version.
type Version struct {
	Platform      struct{ Name string } `json:",omitempty"`
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string `json:",omitempty"`
	BuildTime     string `json:",omitempty"`
}

// Info answers GET /info.
type Info struct {
	ID                string
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int
	Driver            string
	DockerRootDir     string
	LoggingDriver     string
	CgroupDriver      string
	CgroupVersion     string
	KernelVersion     string
	OperatingSystem   string
	OSType            string
	Architecture      string
	NCPU              int
	MemTotal          int64
	Name              string
	ServerVersion     string
	DefaultRuntime    string
	Runtimes          map[string]struct{ Path string }
	SecurityOptions   []string
	Warnings          []string
}

// HealthConfig is a container's health check.
type HealthConfig struct {
	Test        []string      `json:",omitempty"`
	Interval    time.Duration `json:",omitempty"`
	Timeout     time.Duration `json:",omitempty"`
	StartPeriod time.Duration `json:",omitempty"`
	Retries     int           `json:",omitempty"`
}

// Config is the portable part of a container's configuration.
type Config struct {
	Hostname     string              `json:",omitempty"`
	Domainname   string              `json:",omitempty"`
	User         string              `json:",omitempty"`
	AttachStdin  bool                `json:",omitempty"`
	AttachStdout bool                `json:",omitempty"`
	AttachStderr bool                `json:",omitempty"`
	ExposedPorts map[string]struct{} `json:",omitempty"`
	Tty          bool                `json:",omitempty"`
	OpenStdin    bool                `json:",omitempty"`
	StdinOnce    bool                `json:",omitempty"`
	Env          []string            `json:",omitempty"`
	Cmd          []string            `json:",omitempty"`
	Healthcheck  *HealthConfig       `json:",omitempty"`
	Image        string              `json:",omitempty"`
	Volumes      map[string]struct{} `json:",omitempty"`
	WorkingDir   string              `json:",omitempty"`
	Entrypoint   []string            `json:",omitempty"`
	Labels       map[string]string   `json:",omitempty"`
	StopSignal   string              `json:",omitempty"`
	StopTimeout  *int                `json:",omitempty"`
}

// RestartPolicy is --restart.
type RestartPolicy struct {
	Name              string `json:",omitempty"`
	MaximumRetryCount int    `json:",omitempty"`
}

// Ulimit is one --ulimit.
type Ulimit struct {
	Name string
	Hard int64
	Soft int64
}

// Mount is one --mount / -v / --tmpfs in HostConfig.Mounts form.
type Mount struct {
	Type     string `json:",omitempty"`
	Source   string `json:",omitempty"`
	Target   string `json:",omitempty"`
	ReadOnly bool   `json:",omitempty"`
}

// PortBinding is one host side of -p.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// LogConfig is --log-driver/--log-opt.
type LogConfig struct {
	Type   string            `json:",omitempty"`
	Config map[string]string `json:",omitempty"`
}

// HostConfig is the host-dependent part of a container's configuration.
type HostConfig struct {
	Binds           []string                 `json:",omitempty"`
	LogConfig       LogConfig                `json:",omitempty"`
	NetworkMode     string                   `json:",omitempty"`
	PortBindings    map[string][]PortBinding `json:",omitempty"`
	RestartPolicy   RestartPolicy            `json:",omitempty"`
	AutoRemove      bool                     `json:",omitempty"`
	CapAdd          []string                 `json:",omitempty"`
	CapDrop         []string                 `json:",omitempty"`
	Privileged      bool                     `json:",omitempty"`
	ReadonlyRootfs  bool                     `json:",omitempty"`
	SecurityOpt     []string                 `json:",omitempty"`
	Tmpfs           map[string]string        `json:",omitempty"`
	UsernsMode      string                   `json:",omitempty"`
	Init            *bool                    `json:",omitempty"`
	Mounts          []Mount                  `json:",omitempty"`
	PublishAllPorts bool                     `json:",omitempty"`
	Resources
	Bandwidth // estiba's extension
}

// Resources are the cgroup limits of a container.
type Resources struct {
	CPUShares  int64     `json:"CpuShares,omitempty"`
	Memory     int64     `json:",omitempty"`
	NanoCPUs   int64     `json:"NanoCpus,omitempty"`
	CPUPeriod  int64     `json:"CpuPeriod,omitempty"`
	CPUQuota   int64     `json:"CpuQuota,omitempty"`
	CpusetCpus string    `json:",omitempty"`
	MemorySwap int64     `json:",omitempty"`
	PidsLimit  *int64    `json:",omitempty"`
	Ulimits    []*Ulimit `json:",omitempty"`
}

// ContainerCreateRequest is the body of POST /containers/create.
type ContainerCreateRequest struct {
	Config
	HostConfig       *HostConfig `json:",omitempty"`
	NetworkingConfig any         `json:",omitempty"`
}

// ContainerCreateResponse answers POST /containers/create.
type ContainerCreateResponse struct {
	ID       string `json:"Id"`
	Warnings []string
}

// Port is one row of a container's published ports.
type Port struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16
	PublicPort  uint16 `json:",omitempty"`
	Type        string
}

// ContainerSummary is one row of GET /containers/json.
type ContainerSummary struct {
	ID         string `json:"Id"`
	Names      []string
	Image      string
	ImageID    string
	Command    string
	Created    int64
	Ports      []Port
	Labels     map[string]string
	State      string
	Status     string
	HostConfig struct{ NetworkMode string }
	Mounts     []MountPoint
}

// Health is a container's health status.
type Health struct {
	Status        string
	FailingStreak int
	Log           []HealthResult
}

// HealthResult is one health probe.
type HealthResult struct {
	Start    time.Time
	End      time.Time
	ExitCode int
	Output   string
}

// ContainerState is State in GET /containers/{id}/json.
type ContainerState struct {
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
	Health     *Health `json:",omitempty"`
}

// MountPoint is one mount in inspect output.
type MountPoint struct {
	Type        string `json:",omitempty"`
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Mode        string
	RW          bool
}

// ContainerJSON answers GET /containers/{id}/json.
type ContainerJSON struct {
	ID              string `json:"Id"`
	Created         string
	Path            string
	Args            []string
	State           *ContainerState
	Image           string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	HostConfig      *HostConfig
	Mounts          []MountPoint
	Config          *Config
	NetworkSettings *NetworkSettings
}

// NetworkSettings is the network part of inspect output.
type NetworkSettings struct {
	IPAddress string `json:",omitempty"`
	Gateway   string `json:",omitempty"`
	Ports     map[string][]PortBinding
	Networks  map[string]any
}

// WaitResponse answers POST /containers/{id}/wait.
type WaitResponse struct {
	StatusCode int64
	Error      *struct{ Message string } `json:",omitempty"`
}

// TopResponse answers GET /containers/{id}/top.
type TopResponse struct {
	Titles    []string
	Processes [][]string
}

// ExecConfig is the body of POST /containers/{id}/exec.
type ExecConfig struct {
	User         string   `json:",omitempty"`
	Privileged   bool     `json:",omitempty"`
	Tty          bool     `json:",omitempty"`
	AttachStdin  bool     `json:",omitempty"`
	AttachStderr bool     `json:",omitempty"`
	AttachStdout bool     `json:",omitempty"`
	Env          []string `json:",omitempty"`
	WorkingDir   string   `json:",omitempty"`
	Cmd          []string
	Detach       bool   `json:",omitempty"`
	DetachKeys   string `json:",omitempty"`
}

// IDResponse answers exec create.
type IDResponse struct {
	ID string `json:"Id"`
}

// ExecStartConfig is the body of POST /exec/{id}/start.
type ExecStartConfig struct {
	Detach bool
	Tty    bool
}

// ExecInspect answers GET /exec/{id}/json.
type ExecInspect struct {
	ID          string `json:"ID"`
	ContainerID string `json:"ContainerID"`
	Running     bool
	ExitCode    int
	Pid         int
}

// ImageSummary is one row of GET /images/json.
type ImageSummary struct {
	ID          string `json:"Id"`
	ParentID    string `json:"ParentId"`
	RepoTags    []string
	RepoDigests []string
	Created     int64
	Size        int64
	SharedSize  int64
	Labels      map[string]string
	Containers  int64
}

// ImageInspect answers GET /images/{name}/json.
type ImageInspect struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Created      string
	Architecture string
	Os           string
	Size         int64
	Config       *Config
}

// ImageDeleteItem is one row of DELETE /images/{name}.
type ImageDeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// Event is one message of GET /events.
type Event struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
	// Legacy fields the CLI still reads.
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
}

// PruneReport answers POST /containers/prune and friends.
type PruneReport struct {
	ContainersDeleted []string          `json:",omitempty"`
	ImagesDeleted     []ImageDeleteItem `json:",omitempty"`
	SpaceReclaimed    uint64
}

// DiskUsage answers GET /system/df.
type DiskUsage struct {
	LayersSize int64
	Images     []ImageSummary
	Containers []ContainerSummary
	Volumes    []any
	BuildCache []any
}

// JSONMessage is one line of a progress stream (pull, load, import).
type JSONMessage struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	Progress string `json:"progress,omitempty"`
	// ProgressDetail is what a client renders its own progress bar from.
	ProgressDetail *ProgressDetail `json:"progressDetail,omitempty"`
	Stream         string          `json:"stream,omitempty"`
	Error          *struct {
		Message string `json:"message"`
	} `json:"errorDetail,omitempty"`
	ErrorMessage string `json:"error,omitempty"`
}

// Volume is a named volume (GET /volumes, /volumes/{name}).
type Volume struct {
	Name       string
	Driver     string
	Mountpoint string
	CreatedAt  string
	Scope      string
	Labels     map[string]string
	Options    map[string]string
}
