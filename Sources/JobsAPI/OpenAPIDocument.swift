// The API description, openapi.yaml, which the EmbedOpenAPI build plugin compiles into this module
// (`embeddedTexts`) so that the binary serves it without the source tree or a resource bundle.

/// The API description served at `/openapi.yaml`.
enum OpenAPIDocument {
    static let yaml: String = {
        guard let document = embeddedTexts.first(where: { $0.path == "openapi.yaml" }) else {
            preconditionFailure("the EmbedOpenAPI plugin embeds openapi.yaml")
        }
        return document.text
    }()
}
