import Testing
@testable import TollgateCore

@Suite("SHA-256, HMAC-SHA-256 and constant-time comparison")
struct SHA256Tests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            result.append(UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)!)
        }
        return result
    }

    @Test("NIST FIPS 180-4 example messages", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func nistVectors(message: String, digest: String) {
        #expect(Hex.encode(SHA256.hash(Self.bytes(message))) == digest)
    }

    @Test("NIST: one million repetitions of 'a'")
    func millionA() {
        let digest = SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
        #expect(Hex.encode(digest) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("hashing in pieces equals hashing at once, across the padding boundaries",
          arguments: [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000])
    func incremental(length: Int) {
        let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = SHA256.hash(message)
        for split in Set([0, length / 3, length / 2, length]) {
            var hasher = SHA256()
            hasher.update(message[..<split])
            hasher.update(message[split...])
            #expect(hasher.finalize() == whole, "split at \(split) of \(length)")
        }
    }

    @Test("RFC 4231 HMAC-SHA-256 test cases 1, 2, 3, 6 and 7", arguments: [
        // 1: a 20-byte key
        (String(repeating: "0b", count: 20), bytes("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        // 2: a key shorter than the output
        ("4a656665", bytes("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        // 3: combined key and data longer than a block
        (String(repeating: "aa", count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        // 6: a key longer than the block size is hashed first
        (String(repeating: "aa", count: 131), bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        // 7: key and data both longer than a block
        (String(repeating: "aa", count: 131),
         bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ] as [(String, [UInt8], String)])
    func rfc4231(keyHex: String, message: [UInt8], mac: String) {
        #expect(Hex.encode(SHA256.hmac(key: Self.bytes(hex: keyHex), message: message)) == mac)
    }

    /// Expected values from Python's `hmac` module.
    @Test("a key of exactly one block is used as it is; one byte more and it is hashed first", arguments: [
        (64, "cd11329ff173063b748ca80406312ca140e95e65d03ba7fa546fdaab1aac03f1"),
        (65, "5d5f27064dc43c62a01463f9866c581d865b2ddcbb928b616b43a5f0e71f5de5"),
    ])
    func keyAtBlockSize(keyLength: Int, mac: String) {
        let key = [UInt8](repeating: UInt8(ascii: "a"), count: keyLength)
        #expect(Hex.encode(SHA256.hmac(key: key, message: Self.bytes("m"))) == mac)
    }

    @Test("hex is lower case, two digits a byte")
    func hex() {
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.encode([]) == "")
    }

    @Test("constantTimeEquals is true only for the same bytes")
    func constantTime() {
        let mac = SHA256.hash(Self.bytes("abc"))
        var lastByteFlipped = mac
        lastByteFlipped[31] ^= 0x01
        var firstByteFlipped = mac
        firstByteFlipped[0] ^= 0x80
        #expect(constantTimeEquals(mac, mac))
        #expect(constantTimeEquals([], []))
        #expect(!constantTimeEquals(mac, lastByteFlipped))
        #expect(!constantTimeEquals(mac, firstByteFlipped))
        #expect(!constantTimeEquals(mac, Array(mac.dropLast())))
        #expect(!constantTimeEquals([], [0]))
    }
}
