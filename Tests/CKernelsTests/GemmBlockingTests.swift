import CKernels
import XCTest

/// The GEMM's cache blocking: derived from the core's caches, overridable,
/// and correct at block sizes small enough that every loop level (NC, KC,
/// MC) takes several partial blocks.
final class GemmBlockingTests: XCTestCase {
    func cpu(_ vendor: String, l1: Int64, l2: Int64, l2By: Int32, l3: Int64, l3By: Int32) -> ck_cpu_info {
        var c = ck_cpu_info()
        withUnsafeMutableBytes(of: &c.vendor) { raw in
            for (i, b) in vendor.utf8.enumerated() { raw[i] = b }
        }
        c.l1d_bytes = l1; c.l2_bytes = l2; c.l2_shared_by = l2By; c.l3_bytes = l3; c.l3_shared_by = l3By
        return c
    }

    /// The rule on published cache sizes of the two server cores this project
    /// runs on (docs/kernels.md gives the reasoning).
    func testBlockingFollowsTheCaches() {
        // Intel Sapphire Rapids: 48 KiB L1d, 2 MiB L2 per core (2 SMT threads), 105 MiB L3 for 112 threads
        var spr = cpu("GenuineIntel", l1: 48 << 10, l2: 2 << 20, l2By: 2, l3: 105 << 20, l3By: 112)
        let s512 = ck_gemm_blocking_for(CK_ISA_AVX512, &spr)
        XCTAssertEqual([s512.mc, s512.kc, s512.nc], [672, 192, 1280], "AVX-512 on Sapphire Rapids")
        let s256 = ck_gemm_blocking_for(CK_ISA_AVX2, &spr)
        XCTAssertEqual([s256.mc, s256.kc, s256.nc], [336, 384, 640], "AVX2 on Sapphire Rapids")
        // AMD Zen 4 (Genoa): 32 KiB L1d, 1 MiB L2 per core (2 SMT threads), 32 MiB L3 per 16 threads
        var zen4 = cpu("AuthenticAMD", l1: 32 << 10, l2: 1 << 20, l2By: 2, l3: 32 << 20, l3By: 16)
        let z = ck_gemm_blocking_for(CK_ISA_AVX512, &zen4)
        XCTAssertEqual([z.mc, z.kc, z.nc], [126, 512, 1024], "AVX-512 on Zen 4")
        // AMD Zen 5 (Turin) as this project's VMs see it: 48 KiB L1d, 1 MiB L2 for one thread, 32 MiB L3 for 2
        var zen5 = cpu("AuthenticAMD", l1: 48 << 10, l2: 1 << 20, l2By: 1, l3: 32 << 20, l3By: 2)
        let z5 = ck_gemm_blocking_for(CK_ISA_AVX512, &zen5)
        XCTAssertEqual([z5.mc, z5.kc, z5.nc], [126, 1024, 2048], "AVX-512 on Zen 5")
        // nothing known: conservative defaults, still whole tiles
        var unknown = ck_cpu_info()
        let u = ck_gemm_blocking_for(CK_ISA_AVX512, &unknown)
        XCTAssertEqual(u.mc % 14, 0); XCTAssertEqual(u.nc % 32, 0); XCTAssertEqual(u.kc % 16, 0)
        XCTAssertGreaterThanOrEqual(u.kc, 128)
    }

    func testThisCoreIsDescribed() throws {
        var info = ck_cpu_info()
        ck_cpu_describe(&info)
        let vendor = withUnsafeBytes(of: info.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        try XCTSkipUnless(vendor == "GenuineIntel" || vendor == "AuthenticAMD", "caches are read from Intel's and AMD's CPUID leaves")
        XCTAssertTrue((16 << 10)...(1 << 20) ~= info.l1d_bytes, "L1d \(info.l1d_bytes) bytes")
        XCTAssertTrue((256 << 10)...(64 << 20) ~= info.l2_bytes, "L2 \(info.l2_bytes) bytes")
        XCTAssertGreaterThan(info.family, 0)
    }

    func testOverrideTextIsParsedStrictly() {
        var b = ck_gemm_blocking()
        XCTAssertEqual(ck_gemm_parse_blocking("112,512,2048", &b), 0)
        XCTAssertEqual([b.mc, b.kc, b.nc], [112, 512, 2048])
        for bad in ["", "112,512", "112,512,2048,1", "a,b,c", "112,512,2048x", "-14,512,2048", "112,4,2048", "112,512,0"] {
            XCTAssertEqual(ck_gemm_parse_blocking(bad, &b), -1, "'\(bad)' must be refused")
        }
        XCTAssertEqual(ck_gemm_parse_blocking(nil, &b), -1)
    }

    /// Blocks far smaller than any cache, so a 100 x 150 x 90 product crosses
    /// several MC, KC and NC boundaries (with partial last blocks; m = 2 MR + 3
    /// leaves 3 rows that join the block before), in every
    /// transpose combination, alpha/beta and padding; then the blocking in
    /// effect is restored. A blocking the tiles cannot use changes nothing.
    func testSmallBlocksGiveTheReferenceResult() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        for isa in GemmKernelTests.optimizedISAs {
            let saved = ck_gemm_get_blocking(isa)
            defer { XCTAssertEqual(ck_gemm_set_blocking(isa, saved), 0) }
            let (mr, nr): (Int32, Int32) = isa == CK_ISA_AVX512 ? (14, 32) : (6, 16)
            XCTAssertEqual(ck_gemm_set_blocking(isa, ck_gemm_blocking(mc: mr - 1, kc: 64, nc: nr)), -1, "MC below a tile")
            XCTAssertEqual(ck_gemm_set_blocking(isa, ck_gemm_blocking(mc: mr, kc: 64, nc: nr + 1)), -1, "NC not whole tiles")
            XCTAssertEqual(ck_gemm_get_blocking(isa).kc, saved.kc, "a refused blocking changes nothing")
            var rng = TestRNG(17)
            // MC 3 MR with m = 92: the 14-row AVX-512 tile (not the 8-row one), its
            // next block's A prefetched, 8 rows joining the last block, an 8-row last tile.
            for (mcTiles, shapes) in [(Int32(2), [(100, 150, 90), (2 * Int(mr) + 3, 2 * Int(nr) + 5, 49)]), (3, [(92, 2 * Int(nr) + 5, 90)])] {
                XCTAssertEqual(ck_gemm_set_blocking(isa, ck_gemm_blocking(mc: mcTiles * mr, kc: 24, nc: 2 * nr)), 0)
                for ta in [false, true] { for tb in [false, true] {
                    for (m, n, k) in shapes {
                        if let msg = GemmKernelTests.run(isa, ta: ta, tb: tb, m: m, n: n, k: k, alpha: 0.5, beta: 1.5, pad: 1, rng: &rng) {
                            XCTFail("gemm \(String(cString: ck_isa_name(isa))) with MC \(mcTiles * mr) KC 24 NC \(2 * nr), m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb): \(msg)")
                        }
                    }
                } }
            }
        }
    }
}
