import Foundation
import Testing
import TollgateCore
@testable import TollgateServer

@Suite("economics data at start")
struct EconomicsConfigTests {
    @Test("economics.file is read from the config and laid over the shipped data")
    func overlay() throws {
        let config = try GatewayConfig.parse(yaml: "economics: { file: mine.json }", file: "tollgate.yaml", environment: [:])
        #expect(config.economicsFile == "mine.json")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("economics-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("""
            {"gpu_offers": [{"id": "lambda-h100-sxm-on-demand", "gpu": "h100", "provider": "Lambda", "provisioning": "on-demand",
                             "usd_per_gpu_hour": "1.99", "source": "quote", "checked": "2026-11-01"}]}
            """.utf8).write(to: URL(fileURLWithPath: path))
        let shipped = try GatewayServer.loadEconomics(file: nil)
        let merged = try GatewayServer.loadEconomics(file: path)
        #expect(merged.offers.count == shipped.offers.count)
        #expect(merged.offers.first { $0.id == "lambda-h100-sxm-on-demand" }?.perGPUHour == Nanodollars(decimalString: "1.99"))
    }

    @Test("a broken economics file stops the start, naming the file, the row and the field")
    func refusal() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("economics-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"throughput": [{"id": "p1", "model": "m"}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try GatewayServer.loadEconomics(file: path)
            Issue.record("accepted a point without a GPU")
        } catch {
            #expect("\(error)".contains("\(path): p1.at: is missing"), "\(error)")
        }
        #expect(throws: (any Error).self) { try GatewayServer.loadEconomics(file: path + ".missing") }
    }
}
