#include "objects/hdf5_spill_storage.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace raympi {

namespace {

namespace fs = std::filesystem;

// HDF5's error stack as one line: the OS's reason when a driver call failed ("No space left on
// device"), else the innermost description. Clears the stack.
std::string Hdf5ErrorText() {
  std::vector<std::string> descriptions;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->push_back(e->desc ? e->desc : "");
        return 0;
      },
      &descriptions);
  H5Eclear2(H5E_DEFAULT);
  static const std::string kOsReason = "error message = '";
  for (const std::string& d : descriptions) {
    size_t at = d.find(kOsReason);
    if (at == std::string::npos) continue;
    at += kOsReason.size();
    return d.substr(at, d.find('\'', at) - at);
  }
  return descriptions.empty() ? "unknown HDF5 error" : descriptions.front();
}

// Closes an HDF5 handle at the end of a scope.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { Close(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  bool ok() const { return id_ >= 0; }
  hid_t get() const { return id_; }
  // Closes now; false if closing failed (for a file: its last data could not be written).
  bool Close() {
    bool ok = true;
    if (id_ >= 0) ok = close_(id_) >= 0;
    id_ = -1;
    return ok;
  }

 private:
  hid_t id_;
  Closer close_;
};

// A 1-D (or n x 16) dataset of `type`, written whole from `data`.
bool WriteWhole(hid_t file, const char* name, hid_t type, int rank, const hsize_t* dims,
                const void* data) {
  Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
  if (!space.ok()) return false;
  Handle set(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Dclose);
  if (!set.ok()) return false;
  if (dims[0] == 0) return true;
  return H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
}

// Selects [offset, offset + size) of a 1-D dataset's file space.
bool SelectRange(hid_t space, uint64_t offset, uint64_t size) {
  const hsize_t start[1] = {offset}, count[1] = {size};
  return H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr) >= 0;
}

// Reserves `bytes` of disk for `path` before HDF5 writes into it. HDF5 cannot drop a file whose
// writes failed (its close fails and the library tries again at exit, or at MPI_Finalize, and
// crashes), so a full disk must be found here, before the first byte of data. Where the file
// system cannot reserve (fallocate unsupported), its free space is checked instead.
Status Reserve(const std::string& path, uint64_t bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(std::strerror(errno));
  int rc = fallocate(fd, 0, 0, static_cast<off_t>(bytes));
  const int error = rc == 0 ? 0 : errno;
  close(fd);
  if (error == 0) return Status::Ok();
  if (error != EOPNOTSUPP && error != ENOSYS) {
    return Status::IoError(std::string(std::strerror(error)) + " (reserving " +
                           std::to_string(bytes) + " bytes)");
  }
  struct statvfs fs_stats;
  if (statvfs(path.c_str(), &fs_stats) == 0 &&
      static_cast<uint64_t>(fs_stats.f_bavail) * fs_stats.f_frsize < bytes) {
    return Status::IoError(std::string(std::strerror(ENOSPC)) + " (" + std::to_string(bytes) +
                           " bytes needed)");
  }
  return Status::Ok();
}

// Room for a batch's HDF5 metadata beyond its bytes: superblock, object headers, the index.
uint64_t MetadataBytes(size_t num_objects) { return (1 << 20) + 64 * num_objects; }

}  // namespace

StatusOr<std::unique_ptr<Hdf5SpillStorage>> Hdf5SpillStorage::Create(const std::string& dir) {
  // Errors become Status messages here; HDF5 must not print its stack on stderr.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return Status::InvalidArgument("cannot create the spill directory '" + dir +
                                   "': " + (ec ? ec.message() : "not a directory"));
  }
  const std::string probe = dir + "/.raympi-write-test";
  FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr || std::fputs("x", f) < 0 || std::fclose(f) != 0) {
    const std::string reason = std::strerror(errno);
    return Status::InvalidArgument("cannot write in the spill directory '" + dir + "': " + reason);
  }
  fs::remove(probe, ec);
  return std::unique_ptr<Hdf5SpillStorage>(new Hdf5SpillStorage(dir));
}

Hdf5SpillStorage::~Hdf5SpillStorage() {
  CloseReader();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string Hdf5SpillStorage::Describe() const { return "HDF5 files in " + dir_; }

StatusOr<SpilledBatch> Hdf5SpillStorage::WriteBatch(const std::vector<SpillItem>& items) {
  SpilledBatch batch;
  batch.file = dir_ + "/spill-" + std::to_string(next_file_++) + ".h5";
  const std::string part = batch.file + ".part";
  std::vector<uint8_t> ids;
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  for (const SpillItem& item : items) {
    const std::string binary = item.id.Binary();
    ids.insert(ids.end(), binary.begin(), binary.end());
    batch.offsets.push_back(total);
    sizes.push_back(item.size);
    total += item.size;
  }
  auto fail = [&](const std::string& step) -> Status {
    const std::string reason = Hdf5ErrorText();
    std::error_code ec;
    fs::remove(part, ec);  // nothing half-written stays
    return Status::IoError("writing " + part + " (" + step + "): " + reason);
  };
  {
    Handle file(H5Fcreate(part.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) return fail("create");
    Status reserved = Reserve(part, total + MetadataBytes(items.size()));
    if (!reserved.ok()) {
      file.Close();  // nothing written yet: closing a fresh file needs a few hundred bytes
      std::error_code ec;
      fs::remove(part, ec);
      return Status::IoError("writing " + part + ": " + reserved.message());
    }
    // The objects' bytes: contiguous, no fill values (every byte is written below).
    const hsize_t dims[1] = {total};
    Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (!space.ok() || !dcpl.ok() || H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) < 0) {
      return fail("dataspace");
    }
    Handle data(H5Dcreate2(file.get(), "objects", H5T_NATIVE_UINT8, space.get(), H5P_DEFAULT,
                           dcpl.get(), H5P_DEFAULT),
                H5Dclose);
    if (!data.ok()) return fail("dataset");
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].size == 0) continue;
      const hsize_t count[1] = {items[i].size};
      Handle memory(H5Screate_simple(1, count, nullptr), H5Sclose);
      if (!memory.ok() || !SelectRange(space.get(), batch.offsets[i], items[i].size) ||
          H5Dwrite(data.get(), H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT,
                   items[i].data) < 0) {
        return fail("object " + items[i].id.Hex());
      }
    }
    const hsize_t index_dims[2] = {items.size(), ObjectId::kSize};
    if (!WriteWhole(file.get(), "ids", H5T_NATIVE_UINT8, 2, index_dims, ids.data()) ||
        !WriteWhole(file.get(), "offsets", H5T_NATIVE_UINT64, 1, index_dims,
                    batch.offsets.data()) ||
        !WriteWhole(file.get(), "sizes", H5T_NATIVE_UINT64, 1, index_dims, sizes.data())) {
      return fail("index");
    }
    data.Close();
    if (H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0 || !file.Close()) return fail("flush");
  }
  std::error_code ec;
  fs::rename(part, batch.file, ec);
  if (ec) {
    fs::remove(part, ec);
    return Status::IoError("renaming " + part + ": " + ec.message());
  }
  return batch;
}

Status Hdf5SpillStorage::OpenForReading(const std::string& path) {
  if (reader_file_ >= 0 && reader_path_ == path) return Status::Ok();
  CloseReader();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return Status::IoError("reading " + path + " (open): " + Hdf5ErrorText());
  const hid_t data = H5Dopen2(file, "objects", H5P_DEFAULT);
  if (data < 0) {
    Status st = Status::IoError("reading " + path + " (dataset): " + Hdf5ErrorText());
    H5Fclose(file);
    return st;
  }
  reader_path_ = path;
  reader_file_ = file;
  reader_data_ = data;
  return Status::Ok();
}

void Hdf5SpillStorage::CloseReader() {
  if (reader_data_ >= 0) H5Dclose(reader_data_);
  if (reader_file_ >= 0) H5Fclose(reader_file_);
  reader_data_ = reader_file_ = -1;
  reader_path_.clear();
}

Status Hdf5SpillStorage::Read(const std::string& path, uint64_t offset, uint64_t size,
                              uint8_t* dest) {
  auto fail = [&](const std::string& step) {
    return Status::IoError("reading " + path + " (" + step + "): " + Hdf5ErrorText());
  };
  RAYMPI_RETURN_IF_ERROR(OpenForReading(path));
  Handle space(H5Dget_space(reader_data_), H5Sclose);
  hsize_t extent[1] = {0};
  if (!space.ok() || H5Sget_simple_extent_dims(space.get(), extent, nullptr) != 1) {
    return fail("dataspace");
  }
  if (offset > extent[0] || size > extent[0] - offset) {
    return Status::IoError("reading " + path + ": bytes [" + std::to_string(offset) + ", " +
                           std::to_string(offset + size) + ") lie beyond its " +
                           std::to_string(extent[0]) + " bytes");
  }
  if (size == 0) return Status::Ok();
  const hsize_t count[1] = {size};
  Handle memory(H5Screate_simple(1, count, nullptr), H5Sclose);
  if (!memory.ok() || !SelectRange(space.get(), offset, size) ||
      H5Dread(reader_data_, H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT, dest) < 0) {
    return fail("read");
  }
  return Status::Ok();
}

Status Hdf5SpillStorage::Remove(const std::string& file) {
  if (file == reader_path_) CloseReader();
  std::error_code ec;
  if (!fs::remove(file, ec)) {
    return Status::IoError("removing " + file + ": " + (ec ? ec.message() : "no such file"));
  }
  return Status::Ok();
}

}  // namespace raympi
