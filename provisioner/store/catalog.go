package store

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"gorm.io/gorm"
)

// PlanInput is what staff enter for a plan.
type PlanInput struct {
	Name      string
	VCPUs     int64
	MemoryMiB int64
	DiskGiB   int64
	Enabled   bool
}

var catalogName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (in *PlanInput) validate() error {
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	switch {
	case !catalogName.MatchString(in.Name):
		return E(ErrInvalid, "name", "use 1–63 lower-case letters, digits, dots, dashes or underscores")
	case in.VCPUs < 1 || in.VCPUs > 256:
		return E(ErrInvalid, "vcpus", "must be between 1 and 256")
	case in.MemoryMiB < 128 || in.MemoryMiB > 4<<20:
		return E(ErrInvalid, "memory_mib", "must be between 128 MiB and 4 TiB")
	case in.DiskGiB < 1 || in.DiskGiB > 65536:
		return E(ErrInvalid, "disk_gib", "must be between 1 and 65536 GiB")
	}
	return nil
}

// ListPlans returns plans, smallest first.
func (s *Store) ListPlans(ctx context.Context, enabledOnly bool) ([]Plan, error) {
	q := s.db.WithContext(ctx).Order("memory_mib, vcpus, disk_gib, name")
	if enabledOnly {
		q = q.Where("enabled = ?", true)
	}
	var out []Plan
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return out, nil
}

// GetPlan finds a plan by id or by name.
func (s *Store) GetPlan(ctx context.Context, idOrName string) (Plan, error) {
	var p Plan
	if err := s.db.WithContext(ctx).Where("id = ? OR name = ?", idOrName, idOrName).Take(&p).Error; err != nil {
		if errIsNotFound(err) {
			return Plan{}, notFound("plan")
		}
		return Plan{}, fmt.Errorf("load plan: %w", err)
	}
	return p, nil
}

// PlanUsage counts live VMs per plan id.
func (s *Store) PlanUsage(ctx context.Context) (map[string]int64, error) {
	return s.countVMsBy(ctx, "plan_id")
}

func (s *Store) countVMsBy(ctx context.Context, col string) (map[string]int64, error) {
	rows, err := s.db.WithContext(ctx).Model(&VM{}).Where("deleted_at IS NULL").Select(col + ", COUNT(*)").Group(col).Rows()
	if err != nil {
		return nil, fmt.Errorf("count vms by %s: %w", col, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// CreatePlan adds a plan.
func (s *Store) CreatePlan(ctx context.Context, a Actor, in PlanInput) (Plan, error) {
	defer s.catalog.invalidate() // after the change is committed (or not)
	if err := in.validate(); err != nil {
		return Plan{}, err
	}
	ts := now()
	p := Plan{ID: newID(), Name: in.Name, VCPUs: in.VCPUs, MemoryMiB: in.MemoryMiB, DiskGiB: in.DiskGiB, Enabled: in.Enabled, CreatedAt: ts, UpdatedAt: ts}
	err := s.change(ctx, a, "plan.create", &Target{Type: "plan", ID: p.ID, Name: p.Name}, func(tx *gorm.DB) error {
		if err := tx.Create(&p).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a plan with this name already exists")
			}
			return err
		}
		return nil
	})
	return p, err
}

// UpdatePlan changes a plan. Existing VMs keep the size they were ordered with.
func (s *Store) UpdatePlan(ctx context.Context, a Actor, id string, in PlanInput) (Plan, error) {
	defer s.catalog.invalidate() // after the change is committed (or not)
	if err := in.validate(); err != nil {
		return Plan{}, err
	}
	var p Plan
	err := s.change(ctx, a, "plan.update", &Target{Type: "plan", ID: id, Name: in.Name}, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&p).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("plan")
			}
			return err
		}
		p.Name, p.VCPUs, p.MemoryMiB, p.DiskGiB, p.Enabled, p.UpdatedAt = in.Name, in.VCPUs, in.MemoryMiB, in.DiskGiB, in.Enabled, now()
		if err := tx.Save(&p).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a plan with this name already exists")
			}
			return err
		}
		return nil
	})
	return p, err
}

// ImageInput is what staff enter for an image.
type ImageInput struct {
	Name      string
	OS        string
	Version   string
	SourceURL string
	Checksum  string
	// Optional direct kernel boot: both URLs with their checksums, or none.
	KernelURL      string
	KernelChecksum string
	InitrdURL      string
	InitrdChecksum string
	// Kind is ImageVM (the default when empty) or ImageMachine.
	Kind    string
	Enabled bool
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (in *ImageInput) validate() error {
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	in.OS = strings.TrimSpace(in.OS)
	in.Version = strings.TrimSpace(in.Version)
	if !catalogName.MatchString(in.Name) {
		return E(ErrInvalid, "name", "use 1–63 lower-case letters, digits, dots, dashes or underscores")
	}
	if in.OS == "" || len(in.OS) > 32 {
		return E(ErrInvalid, "os", "name the operating system (at most 32 characters), e.g. Debian")
	}
	if in.Version == "" || len(in.Version) > 32 {
		return E(ErrInvalid, "version", "give the version (at most 32 characters), e.g. 12")
	}
	in.Kind = strings.TrimSpace(in.Kind)
	if in.Kind == "" {
		in.Kind = ImageVM
	}
	if in.Kind != ImageVM && in.Kind != ImageMachine {
		return E(ErrInvalid, "kind", "the kind must be vm (a VM disk) or machine (a bare-metal disk image)")
	}
	var err error
	if in.SourceURL, in.Checksum, err = validSource("source_url", "checksum", "image", in.SourceURL, in.Checksum); err != nil {
		return err
	}
	if in.Kind == ImageMachine {
		if !strings.HasPrefix(in.SourceURL, "http://") && !strings.HasPrefix(in.SourceURL, "https://") {
			return E(ErrInvalid, "source_url", "machines download their image themselves: give an http:// or https:// address they can reach")
		}
		if strings.TrimSpace(in.KernelURL) != "" || strings.TrimSpace(in.InitrdURL) != "" {
			return E(ErrInvalid, "kernel_url", "a machine image boots with its own boot loader: leave the kernel and initrd empty")
		}
	}
	in.KernelURL, in.InitrdURL = strings.TrimSpace(in.KernelURL), strings.TrimSpace(in.InitrdURL)
	if (in.KernelURL == "") != (in.InitrdURL == "") {
		return E(ErrInvalid, "kernel_url", "give both a kernel and an initrd for direct boot, or neither")
	}
	if in.KernelURL == "" {
		in.KernelChecksum, in.InitrdChecksum = "", ""
		return nil
	}
	if in.KernelURL, in.KernelChecksum, err = validSource("kernel_url", "kernel_checksum", "kernel", in.KernelURL, in.KernelChecksum); err != nil {
		return err
	}
	in.InitrdURL, in.InitrdChecksum, err = validSource("initrd_url", "initrd_checksum", "initrd", in.InitrdURL, in.InitrdChecksum)
	return err
}

// validSource checks a download address and its SHA-256, returning them
// normalised ("sha256:<hex>").
func validSource(urlField, sumField, what, raw, sum string) (string, string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") || len(raw) > 2048 {
		return "", "", E(ErrInvalid, urlField, "give an http://, https:// or file:// address of the "+what)
	}
	if u.User != nil {
		return "", "", E(ErrInvalid, urlField, "do not put credentials in the "+what+" address")
	}
	hex := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(sum)), "sha256:")
	if !sha256Hex.MatchString(hex) {
		return "", "", E(ErrInvalid, sumField, "give the "+what+"'s SHA-256 as 64 hex digits, optionally prefixed sha256:")
	}
	return raw, "sha256:" + hex, nil
}

// ListImages returns images by name: only enabled ones if enabledOnly, only
// those of kind unless kind is "".
func (s *Store) ListImages(ctx context.Context, enabledOnly bool, kind string) ([]Image, error) {
	q := s.db.WithContext(ctx).Order("name")
	if enabledOnly {
		q = q.Where("enabled = ?", true)
	}
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	var out []Image
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// GetImage finds an image by id or by name.
func (s *Store) GetImage(ctx context.Context, idOrName string) (Image, error) {
	var im Image
	if err := s.db.WithContext(ctx).Where("id = ? OR name = ?", idOrName, idOrName).Take(&im).Error; err != nil {
		if errIsNotFound(err) {
			return Image{}, notFound("image")
		}
		return Image{}, fmt.Errorf("load image: %w", err)
	}
	return im, nil
}

// CreateImage registers an image.
func (s *Store) CreateImage(ctx context.Context, a Actor, in ImageInput) (Image, error) {
	if err := in.validate(); err != nil {
		return Image{}, err
	}
	ts := now()
	im := Image{ID: newID(), Name: in.Name, OS: in.OS, Version: in.Version, SourceURL: in.SourceURL, Checksum: in.Checksum,
		KernelURL: in.KernelURL, KernelChecksum: in.KernelChecksum, InitrdURL: in.InitrdURL, InitrdChecksum: in.InitrdChecksum,
		Kind: in.Kind, Enabled: in.Enabled, CreatedAt: ts, UpdatedAt: ts}
	err := s.change(ctx, a, "image.create", &Target{Type: "image", ID: im.ID, Name: im.Name}, func(tx *gorm.DB) error {
		if err := tx.Create(&im).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "an image with this name already exists")
			}
			return err
		}
		return nil
	})
	return im, err
}

// UpdateImage changes an image's details; an empty Kind keeps the current one.
func (s *Store) UpdateImage(ctx context.Context, a Actor, id string, in ImageInput) (Image, error) {
	if strings.TrimSpace(in.Kind) == "" {
		var cur Image
		if err := s.db.WithContext(ctx).Select("kind").Where("id = ?", id).Take(&cur).Error; err == nil {
			in.Kind = cur.Kind
		}
	}
	if err := in.validate(); err != nil {
		return Image{}, err
	}
	var im Image
	err := s.change(ctx, a, "image.update", &Target{Type: "image", ID: id, Name: in.Name}, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&im).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("image")
			}
			return err
		}
		im.Name, im.OS, im.Version, im.SourceURL, im.Checksum, im.Enabled, im.UpdatedAt = in.Name, in.OS, in.Version, in.SourceURL, in.Checksum, in.Enabled, now()
		im.KernelURL, im.KernelChecksum, im.InitrdURL, im.InitrdChecksum = in.KernelURL, in.KernelChecksum, in.InitrdURL, in.InitrdChecksum
		if im.Kind != in.Kind {
			// VMs and machines may run it: their disks were made from it.
			var n int64
			if err := tx.Model(&VM{}).Where("image_id = ? AND deleted_at IS NULL", id).Count(&n).Error; err != nil {
				return fmt.Errorf("count vms of image: %w", err)
			}
			if n == 0 {
				if err := tx.Model(&Machine{}).Where("deploy_image_id = ?", id).Count(&n).Error; err != nil {
					return fmt.Errorf("count machines deploying image: %w", err)
				}
			}
			if n > 0 {
				return E(ErrConflict, "kind", "this image is in use; its kind cannot change")
			}
			im.Kind = in.Kind
		}
		if err := tx.Save(&im).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "an image with this name already exists")
			}
			return err
		}
		return nil
	})
	return im, err
}

// VMStateCounts counts live VMs per state.
func (s *Store) VMStateCounts(ctx context.Context) (map[string]int64, error) {
	return s.countVMsBy(ctx, "state")
}
