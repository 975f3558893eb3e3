package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/crypto/ssh"
	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/sshkey"
)

// SettingDeploySSHKeys holds the staff public keys every deploy installs
// for the image's default user, one authorized_keys line each.
const SettingDeploySSHKeys = "deploy_ssh_keys"

// MaxDeploySSHKeys bounds the staff deploy keys.
const MaxDeploySSHKeys = 50

// KVMHostLoginUser is the account the provisioner logs in as on a machine
// deployed as a KVM host: the image's default user, which the deploy gives
// the provisioner's key and which a KVM host image puts in the libvirt group.
const KVMHostLoginUser = "debian"

// DeploySSHKeys returns the staff deploy keys.
func (s *Store) DeploySSHKeys(ctx context.Context) ([]string, error) {
	return s.deploySSHKeys(s.db.WithContext(ctx))
}

func (s *Store) deploySSHKeys(db *gorm.DB) ([]string, error) {
	var st setting
	err := db.Where("key = ?", SettingDeploySSHKeys).Take(&st).Error
	if errIsNotFound(err) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read deploy ssh keys: %w", err)
	}
	out := []string{}
	for _, l := range strings.Split(st.Value, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// SetDeploySSHKeys replaces the staff deploy keys. Each key must pass the
// same checks as a customer's key; a bad one refuses the whole list with
// its position, and duplicates are refused too.
func (s *Store) SetDeploySSHKeys(ctx context.Context, a Actor, keys []string) ([]string, error) {
	var out []string
	err := s.change(ctx, a, "deploy_ssh_keys.update", &Target{Type: "setting", Name: SettingDeploySSHKeys}, func(tx *gorm.DB) error {
		if len(keys) > MaxDeploySSHKeys {
			return E(ErrInvalid, "keys", fmt.Sprintf("at most %d keys", MaxDeploySSHKeys))
		}
		seen := map[string]int{}
		out = make([]string, 0, len(keys))
		for i, raw := range keys {
			k, err := sshkey.Parse(raw)
			if err != nil {
				return E(ErrInvalid, "keys", fmt.Sprintf("key %d: %v", i+1, err))
			}
			if j, dup := seen[k.Fingerprint]; dup {
				return E(ErrInvalid, "keys", fmt.Sprintf("key %d is the same as key %d", i+1, j))
			}
			seen[k.Fingerprint] = i + 1
			out = append(out, k.Authorized)
		}
		return tx.Save(&setting{Key: SettingDeploySSHKeys, Value: strings.Join(out, "\n"), CreatedAt: now()}).Error
	})
	return out, err
}

// DeployPlan is what a deploying machine's agent is told to do.
type DeployPlan struct {
	MachineID  string
	InstanceID string
	Hostname   string
	ImageURL   string
	SHA256     string // hex, without the sha256: prefix
	Disk       string
	SSHKeys    []string
}

// AgentDeployPlan returns the deploy plan of the machine whose agent holds
// rawToken. The token is not spent: the report that follows spends it. An
// unknown token, or one of a machine that is not deploying, is ErrNotFound.
func (s *Store) AgentDeployPlan(ctx context.Context, rawToken string) (DeployPlan, error) {
	if rawToken == "" {
		return DeployPlan{}, notFound("agent token")
	}
	db := s.db.WithContext(ctx)
	var m Machine
	err := db.Where("agent_token_hash = ? AND state = ?", tokenHash(rawToken), MachineDeploying).Take(&m).Error
	if errIsNotFound(err) {
		return DeployPlan{}, notFound("agent token")
	}
	if err != nil {
		return DeployPlan{}, fmt.Errorf("find agent token: %w", err)
	}
	var img Image
	if err := db.Where("id = ?", m.DeployImageID).Take(&img).Error; err != nil {
		if errIsNotFound(err) {
			return DeployPlan{}, E(ErrConflict, "image", "the image chosen for this deploy no longer exists")
		}
		return DeployPlan{}, fmt.Errorf("load deploy image: %w", err)
	}
	keys, err := s.deploySSHKeys(db)
	if err != nil {
		return DeployPlan{}, err
	}
	if m.DeployKVMHost {
		pub, err := s.Setting(ctx, SettingProvisionerSSHKey)
		if err != nil {
			return DeployPlan{}, err
		}
		if pub = strings.TrimSpace(pub); pub != "" {
			keys = append(keys, pub)
		}
	}
	return DeployPlan{
		MachineID: m.ID,
		// A new instance per deploy, so cloud-init runs its first boot again.
		InstanceID: fmt.Sprintf("%s-%d", m.ID, m.StateChangedAt.UTC().Unix()),
		Hostname:   m.Name,
		ImageURL:   img.SourceURL,
		SHA256:     strings.TrimPrefix(img.Checksum, "sha256:"),
		Disk:       m.DeployDisk,
		SSHKeys:    keys,
	}, nil
}

// checkKVMHostDeploy refuses a KVM host deploy that could not register.
func checkKVMHostDeploy(tx *gorm.DB, m Machine) error {
	if m.HostID != "" {
		var n int64
		if err := tx.Model(&Host{}).Where("id = ?", m.HostID).Count(&n).Error; err != nil {
			return fmt.Errorf("check machine's host: %w", err)
		}
		if n > 0 {
			return E(ErrConflict, "kvm_host", "this machine is already a KVM host; delete that host first")
		}
	}
	var n int64
	if err := tx.Model(&Host{}).Where("name = ?", m.Name).Count(&n).Error; err != nil {
		return fmt.Errorf("check host name: %w", err)
	}
	if n > 0 {
		return E(ErrConflict, "kvm_host", "a host called "+m.Name+" already exists; rename the machine or delete that host")
	}
	var st setting
	if err := tx.Where("key = ?", SettingProvisionerSSHKey).Take(&st).Error; err != nil || strings.TrimSpace(st.Value) == "" {
		return E(ErrConflict, "kvm_host", "the provisioner has not published its SSH key yet, so it could not log in to the host; start the provisioner first")
	}
	return nil
}

// machineAddress is the IPv4 address the machine's boot MAC holds on a
// boot subnet: its reservation, else its most recent lease.
func machineAddress(tx *gorm.DB, machineID string) (string, error) {
	var mac MachineMAC
	if err := tx.Where("machine_id = ? AND boot = ?", machineID, true).Take(&mac).Error; err != nil {
		if !errIsNotFound(err) {
			return "", fmt.Errorf("find boot mac: %w", err)
		}
		if err := tx.Where("machine_id = ?", machineID).Order("mac").Take(&mac).Error; err != nil {
			return "", fmt.Errorf("find a mac of the machine: %w", err)
		}
	}
	var r Reservation
	if err := tx.Where("mac = ?", mac.MAC).Take(&r).Error; err == nil {
		return r.IP, nil
	} else if !errIsNotFound(err) {
		return "", fmt.Errorf("find reservation: %w", err)
	}
	var l dhcpLease
	if err := tx.Where("mac = ?", mac.MAC).Order("expires_at DESC").Take(&l).Error; err != nil {
		if errIsNotFound(err) {
			return "", E(ErrConflict, "", "the machine has no DHCP lease or reservation, so its address is unknown")
		}
		return "", fmt.Errorf("find lease: %w", err)
	}
	return l.IP, nil
}

// registerKVMHost creates the host a deployed machine becomes, with the SSH
// host key its deploy generated pinned, and links it to the machine.
func (s *Store) registerKVMHost(tx *gorm.DB, m Machine, hostKey string) (Host, error) {
	if hostKey == "" {
		return Host{}, E(ErrInvalid, "ssh_host_key", "the deploy did not report the SSH host key it installed")
	}
	ip, err := machineAddress(tx, m.ID)
	if err != nil {
		return Host{}, err
	}
	in := HostInput{Name: m.Name, URI: (&url.URL{Scheme: "qemu+ssh", User: url.User(KVMHostLoginUser), Host: ip, Path: "/system"}).String()}
	if err := in.validate(); err != nil {
		return Host{}, err
	}
	ts := now()
	h := Host{ID: newID(), Name: in.Name, URI: in.URI, SSHHostKey: hostKey, Enabled: true, State: HostNew, StoragePool: in.StoragePool,
		CPURatio: in.CPURatio, MemoryRatio: in.MemoryRatio, DiskRatio: in.DiskRatio, CreatedAt: ts, UpdatedAt: ts}
	if err := tx.Create(&h).Error; err != nil {
		if isDuplicate(err) {
			return Host{}, E(ErrConflict, "name", "a host called "+in.Name+" already exists")
		}
		return Host{}, fmt.Errorf("create host: %w", err)
	}
	return h, nil
}

// normalizeHostKey checks a reported SSH host key and returns it as
// "type base64", without a comment.
func normalizeHostKey(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	k, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(raw))
	if err != nil || len(strings.TrimSpace(string(rest))) > 0 {
		return "", E(ErrInvalid, "ssh_host_key", "the reported SSH host key is not one OpenSSH public key")
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), nil
}
