import Testing
@testable import Import

/// Parses and expects success.
private func parse(_ text: String, limits: XMLLimits = .standard,
                   sourceLocation: SourceLocation = #_sourceLocation) -> XMLElement? {
    do throws(XMLError) {
        return try XMLDocument.parse(text, limits: limits).root
    } catch {
        Issue.record("expected a document, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Parses and expects a refusal.
private func refusal(_ text: String, limits: XMLLimits = .standard) -> XMLError? {
    refusal(bytes: Array(text.utf8), limits: limits)
}

private func refusal(bytes: [UInt8], limits: XMLLimits = .standard) -> XMLError? {
    do throws(XMLError) {
        _ = try XMLDocument.parse(bytes: bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

@Suite struct XMLParserTests {
    @Test func elementsAttributesTextAndLines() throws {
        let text = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a libvirt domain -->
            <domain type='kvm' id="3">
              <name>web</name>
              <devices>
                <disk type='file' device='disk'/>
                <disk type='block' device='cdrom'>
                  <target dev='sda'/>
                </disk>
              </devices>
            </domain>
            """
        let root = try #require(parse(text))
        #expect(root.name == "domain")
        #expect(root.attributes.map(\.name) == ["type", "id"])
        #expect(root.attribute("id") == "3")
        #expect(root.line == 3 && root.column == 1)
        #expect(root.child("name")?.text == "web")
        #expect(root.child("name")?.line == 4)
        let disks = try #require(root.child("devices")).children(named: "disk")
        #expect(disks.map(\.line) == [6, 7])
        #expect(disks[1].attribute("device") == "cdrom")
        #expect(disks[1].child("target")?.line == 8)
        #expect(disks[1].child("target")?.column == 7)
        #expect(disks[1].attributes[0].line == 7 && disks[1].attributes[0].column == 11)
    }

    @Test func predefinedEntitiesAndCharacterReferences() throws {
        let root = try #require(parse(#"<a v="&lt;&gt;&amp;&apos;&quot;">x &#65;&#x42;&#x1F600; &amp;amp;</a>"#))
        #expect(root.attribute("v") == "<>&'\"")
        #expect(root.text == "x AB😀 &amp;")
    }

    @Test func cdataCommentsAndProcessingInstructions() throws {
        let root = try #require(parse("""
            <?xml version="1.0"?>
            <?stylesheet href="x"?>
            <a><!-- not text --><![CDATA[<b>&amp;</b>]]><?pi data?>tail</a>
            <!-- after -->
            <?after?>
            """))
        #expect(root.text == "<b>&amp;</b>tail")
        #expect(root.children.isEmpty)
    }

    @Test func lineEndsAndAttributeWhitespaceAreNormalised() throws {
        let root = try #require(parse("<a v='x\ty\r\nz'>1\r\n2\r3</a>"))
        #expect(root.attribute("v") == "x y z")
        #expect(root.text == "1\n2\n3")
    }

    @Test func namespacesResolveForElementsAndAttributes() throws {
        let root = try #require(parse("""
            <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
                      xmlns:rasd="urn:rasd">
              <Item ovf:required="false"><rasd:ResourceType>3</rasd:ResourceType></Item>
              <x:Other xmlns:x="urn:x" plain="1" xml:lang="en"/>
            </Envelope>
            """))
        #expect(root.namespace == "http://schemas.dmtf.org/ovf/envelope/1")
        let item = try #require(root.child("Item"))
        #expect(item.namespace == root.namespace)
        #expect(item.attribute(local: "required", namespace: "http://schemas.dmtf.org/ovf/envelope/1") == "false")
        let type = try #require(item.children(local: "ResourceType").first)
        #expect(type.name == "rasd:ResourceType" && type.prefix == "rasd" && type.localName == "ResourceType")
        #expect(type.namespace == "urn:rasd")
        let other = try #require(root.children(local: "Other", namespace: "urn:x").first)
        #expect(other.attributes.first { $0.name == "plain" }?.namespace == nil)
        #expect(other.attributes.first { $0.name == "xml:lang" }?.namespace == "http://www.w3.org/XML/1998/namespace")
        // Outside the declaring element the prefix is unbound again.
        #expect(refusal("<a><x:b xmlns:x='u'/><x:c/></a>")?.kind == .unboundPrefix)
    }

    @Test func byteOrderMarkIsSkipped() throws {
        let root = try #require(try? XMLDocument.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("<a>\n<b/></a>".utf8)).root)
        #expect(root.line == 1 && root.column == 1)
        #expect(root.children.first?.line == 2)
    }

    @Test func doctypeAndEntityDeclarationsAreRefused() throws {
        let xxe = """
            <?xml version="1.0"?>
            <!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
            <foo>&xxe;</foo>
            """
        let error = try #require(refusal(xxe))
        #expect(error.kind == .doctype)
        #expect(error.line == 2 && error.column == 1)
        #expect(error.description.hasPrefix("2:1: "))
        #expect(refusal("<a/><!DOCTYPE a>")?.kind == .doctype)
        #expect(refusal("<!doctype html><a/>")?.kind == .doctype)
        #expect(refusal("<a><!ENTITY x 'y'></a>")?.kind == .entityDeclaration)
        #expect(refusal("<!ENTITY x 'y'><a/>")?.kind == .entityDeclaration)
    }

    @Test func undefinedEntitiesAndBadReferencesAreRefused() {
        #expect(refusal("<a>&xxe;</a>")?.kind == .undefinedEntity)
        #expect(refusal("<a v='&nbsp;'/>")?.kind == .undefinedEntity)
        #expect(refusal("<a>&#0;</a>")?.kind == .badCharacterReference)
        #expect(refusal("<a>&#xD800;</a>")?.kind == .badCharacterReference)
        #expect(refusal("<a>&#x110000;</a>")?.kind == .badCharacterReference)
        #expect(refusal("<a>&#99999999999;</a>")?.kind == .badCharacterReference)
        #expect(refusal("<a>&#x;</a>")?.kind == .badCharacterReference)
        #expect(refusal("<a>AT&T</a>")?.kind == .syntax)
        #expect(refusal("<a>&</a>")?.kind == .syntax)
    }

    @Test func malformedMarkupNamesLineAndColumn() throws {
        let mismatched = try #require(refusal("<a>\n  <b>\n  </c>\n</a>"))
        #expect(mismatched.kind == .mismatchedTag)
        #expect(mismatched.line == 3 && mismatched.column == 3)
        let duplicate = try #require(refusal("<a>\n <b x='1' y='2' x='3'/></a>"))
        #expect(duplicate.kind == .duplicateAttribute)
        #expect(duplicate.line == 2 && duplicate.column == 17)
        #expect(refusal("<a><b></a>")?.kind == .mismatchedTag)
        #expect(refusal("<a>")?.kind == .unexpectedEnd)
        #expect(refusal("<a x='1></a>")?.kind == .syntax)
        #expect(refusal("<a x=1/>")?.kind == .syntax)
        #expect(refusal("<a x='1'y='2'/>")?.kind == .syntax)
        #expect(refusal("<a x='<'/>")?.kind == .syntax)
        #expect(refusal("<a><!-- open</a>")?.kind == .unexpectedEnd)
        #expect(refusal("<a><![CDATA[ open</a>")?.kind == .unexpectedEnd)
        #expect(refusal("<a/><b/>")?.kind == .contentAfterRoot)
        #expect(refusal("<a/>text")?.kind == .contentAfterRoot)
        #expect(refusal("text<a/>")?.kind == .syntax)
        #expect(refusal("")?.kind == .noRootElement)
        #expect(refusal("  <!-- only -->  ")?.kind == .noRootElement)
        #expect(refusal("<1a/>")?.kind == .syntax)
        #expect(refusal("<a:b:c xmlns:a='u'/>")?.kind == .syntax)
        #expect(refusal("<p:a/>")?.kind == .unboundPrefix)
        #expect(refusal("<a p:x='1'/>")?.kind == .unboundPrefix)
        #expect(refusal("<a><?xml version='1.0'?></a>")?.kind == .syntax)
        #expect(refusal("<?xml version='1.0' encoding='ISO-8859-1'?><a/>")?.kind == .syntax)
        #expect(refusal("<a><!FOO></a>")?.kind == .syntax)
    }

    @Test func badUTF8AndForbiddenCharactersAreRefused() throws {
        let cut = try #require(refusal(bytes: Array("<a>\nx".utf8) + [0xC3] + Array("</a>".utf8)))
        #expect(cut.kind == .invalidUTF8)
        #expect(cut.line == 2 && cut.column == 2)
        #expect(refusal(bytes: Array("<a>".utf8) + [0xC0, 0x80] + Array("</a>".utf8))?.kind == .invalidUTF8)
        #expect(refusal(bytes: Array("<a>".utf8) + [0xED, 0xA0, 0x80] + Array("</a>".utf8))?.kind == .invalidUTF8)
        #expect(refusal(bytes: Array("<a>".utf8) + [0xFF] + Array("</a>".utf8))?.kind == .invalidUTF8)
        #expect(refusal(bytes: Array("<a>".utf8) + [0xE2, 0x82])?.kind == .invalidUTF8)
        #expect(refusal("<a>\u{0}</a>")?.kind == .invalidCharacter)
        #expect(refusal("<a>\u{1B}</a>")?.kind == .invalidCharacter)
        #expect(refusal("<a>\u{FFFE}</a>")?.kind == .invalidCharacter)
        // Columns count characters, not bytes.
        let after = try #require(refusal("<a>ää<b></a>"))
        #expect(after.line == 1 && after.column == 9)
    }

    @Test func everyLimitIsEnforced() {
        let small = XMLLimits(bytes: 100, depth: 3, elements: 5, attributesPerElement: 2, attributes: 3,
                              nameLength: 8, attributeValueLength: 4)
        #expect(refusal(String(repeating: " ", count: 101) + "<a/>", limits: small)?.kind == .tooLarge)
        #expect(refusal("<a><b><c><d/></c></b></a>", limits: small)?.kind == .tooDeep)
        #expect(parse("<a><b><c/></b></a>", limits: small) != nil)
        #expect(refusal("<a><b/><b/><b/><b/><b/></a>", limits: small)?.kind == .tooManyElements)
        #expect(refusal("<a x='1' y='2' z='3'/>", limits: small)?.kind == .tooManyAttributes)
        #expect(refusal("<a x='1' y='2'><b z='1' w='2'/></a>", limits: small)?.kind == .tooManyAttributes)
        #expect(refusal("<abcdefghi/>", limits: small)?.kind == .nameTooLong)
        #expect(refusal("<a abcdefghi='1'/>", limits: small)?.kind == .nameTooLong)
        #expect(refusal("<a x='12345'/>", limits: small)?.kind == .valueTooLong)
        #expect(XMLLimits.standard.bytes == 4 << 20 && XMLLimits.standard.depth == 64)
    }

    @Test func deepNestingIsRefusedWithoutRecursion() {
        let text = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        #expect(refusal(text)?.kind == .tooDeep)
        let deep = String(repeating: "<a>", count: 1_000) + String(repeating: "</a>", count: 1_000)
        #expect(parse(deep, limits: XMLLimits(depth: 1_000)) != nil)
    }

    @Test func truncationsOfADocumentNeverCrash() {
        let text = """
            <?xml version="1.0"?><!-- c --><d a="&amp;&#65;"><e><![CDATA[x]]></e><?p q?><f x:y="1" xmlns:x="u"/></d>
            """
        let bytes = Array(text.utf8)
        for cut in 0..<bytes.count {
            #expect(refusal(bytes: Array(bytes[..<cut])) != nil)
        }
        #expect(refusal(bytes: bytes) == nil)
    }

    /// 60,000 siblings with text: a parser that copied the open element's children on every append (quadratic)
    /// took minutes here; a linear one takes well under a second, so the bound is far from both.
    @Test func wideDocumentsParseInLinearTime() throws {
        let text = "<a>" + String(repeating: "<b c='1'>t</b>\n", count: 60_000) + "</a>"
        let clock = ContinuousClock()
        let start = clock.now
        let root = try #require(parse(text))
        let elapsed = clock.now - start
        #expect(root.children.count == 60_000)
        #expect(root.text == String(repeating: "\n", count: 60_000))
        #expect(elapsed < .seconds(20), "took \(elapsed)")
    }
}
