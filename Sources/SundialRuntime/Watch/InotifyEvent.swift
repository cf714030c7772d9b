import Glibc

/// One record read from an inotify descriptor.
struct InotifyEvent: Hashable, Sendable {
    var watch: Int32
    var mask: UInt32
    var name: String

    var isDirectory: Bool { mask & UInt32(IN_ISDIR) != 0 }
    func has(_ flag: Int32) -> Bool { mask & UInt32(bitPattern: flag) != 0 }
    func has(_ flag: UInt32) -> Bool { mask & flag != 0 }

    /// Splits a buffer filled by `read(2)` into events. `struct inotify_event` ends in a
    /// flexible array (`name[len]`, NUL-padded), which Swift cannot import, hence the manual
    /// walk over `wd`, `mask`, `cookie`, `len` (4 bytes each, native order).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [InotifyEvent] {
        var events: [InotifyEvent] = []
        var offset = 0
        let header = 16
        while offset + header <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameStart = offset + header
            guard nameStart + length <= bytes.count else { break }
            let raw = bytes[nameStart..<(nameStart + length)]
            let name = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            events.append(InotifyEvent(watch: wd, mask: mask, name: name))
            offset = nameStart + length
        }
        return events
    }
}
