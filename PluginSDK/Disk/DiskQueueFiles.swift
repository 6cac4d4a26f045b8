import CLibAIO
import Glibc

/// A data file as one queue does I/O on it: the image's descriptor, and in cache mode `none` the
/// queue's own O_DIRECT descriptor of the same open file.
struct DiskQueueFile {
    /// The descriptor the image's extents name (page cache).
    let imageFD: Int32
    /// The descriptor data moves through: an O_DIRECT one the queue opened, or `imageFD`.
    let ioFD: Int32
    let path: String
    let writable: Bool
    /// True when `ioFD` is O_DIRECT, so memory and offsets must be aligned as below.
    let direct: Bool
    let memoryAlignment: UInt64
    let offsetAlignment: UInt64
    /// False once fallocate(ZERO_RANGE) was refused: zeros are written instead.
    var zeroRangeWorks = true
}

/// The data files of one image, for one queue: opens the O_DIRECT descriptors `none` needs.
struct DiskQueueFiles {
    private(set) var files: [DiskQueueFile] = []
    private var byImageFD: [Int32: Int] = [:]

    init(image: any DiskImage, cache: DiskCacheMode) throws(DiskError) {
        for dataFile in image.dataFiles where byImageFD[dataFile.fd] == nil {
            var file = DiskQueueFile(imageFD: dataFile.fd, ioFD: dataFile.fd, path: dataFile.path,
                                     writable: dataFile.writable && !image.isReadOnly,
                                     direct: false, memoryAlignment: 1, offsetAlignment: 1)
            if cache == .none {
                do throws(DiskError) {
                    file = try Self.openDirect(file)
                } catch {
                    close()
                    throw error
                }
            }
            byImageFD[dataFile.fd] = files.count
            files.append(file)
        }
    }

    /// Reopens the file behind `file.imageFD` (the same inode, whatever its path is now) with O_DIRECT.
    private static func openDirect(_ file: DiskQueueFile) throws(DiskError) -> DiskQueueFile {
        let fd = veneer_aio_open_direct("/proc/self/fd/\(file.imageFD)", file.writable ? 1 : 0)
        guard fd >= 0 else {
            let code = errno
            if code == EINVAL {
                throw DiskError(.unsupported, path: file.path,
                                "cache mode none needs O_DIRECT, which this file system refuses (use cache writeback)")
            }
            throw DiskError(.io(errno: code), path: file.path, "cannot open with O_DIRECT for cache mode none: \(describe(code))")
        }
        var memory: UInt32 = 0
        var offset: UInt32 = 0
        // File systems that do not report it (tmpfs) take 512-byte-aligned I/O; an EINVAL later
        // still falls back to the page-cache descriptor for that transfer.
        if veneer_aio_dio_alignment(fd, &memory, &offset) != 0 {
            memory = 512
            offset = 512
        }
        return DiskQueueFile(imageFD: file.imageFD, ioFD: fd, path: file.path, writable: file.writable,
                             direct: true, memoryAlignment: UInt64(memory), offsetAlignment: UInt64(offset))
    }

    /// The index of the file an extent names, if the image declared it.
    func index(ofImageFD fd: Int32) -> Int? { byImageFD[fd] }

    subscript(_ index: Int) -> DiskQueueFile {
        get { files[index] }
        set { files[index] = newValue }
    }

    /// Closes the descriptors this queue opened (never the image's).
    func close() {
        for file in files where file.ioFD != file.imageFD { Glibc.close(file.ioFD) }
    }
}

/// strerror's text for an errno.
func describe(_ code: Int32) -> String {
    String(cString: strerror(code))
}
