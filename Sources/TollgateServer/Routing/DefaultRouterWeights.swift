import Foundation
import TollgateCore

/// The learned router that ships with Tollgate (`Resources/router-default.json`, trained by
/// `tools/router/train.py` on the Apache-2.0 RouteLLM data).
public enum DefaultRouterWeights {
    public static func load() throws -> LearnedRouterWeights {
        guard let url = Bundle.module.url(forResource: "router-default", withExtension: "json") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "router-default.json (TollgateServer resources)"])
        }
        return try LearnedRouterWeights.parse(json: Array(Data(contentsOf: url)))
    }
}
