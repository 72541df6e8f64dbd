#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func getenvString(_ key: String) -> String? {
    guard let p = getenv(key) else { return nil }
    return String(cString: p)
}

/// The whole file as UTF-8 text, or nil when it cannot be read (or is larger
/// than the memory limit allows).
func readTextFile(_ path: String) -> String? {
    guard let bytes = (try? readBinaryFile(path)) ?? nil else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
