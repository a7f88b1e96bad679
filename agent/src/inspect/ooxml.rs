//! OOXML documents (docx, xlsx, pptx): label-information parts and custom properties.
