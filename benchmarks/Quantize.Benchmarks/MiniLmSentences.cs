namespace Quantize.Benchmarks;

/// <summary>
/// English sentences for the MiniLM benchmark, written for it (no third-party text): varied topics and
/// lengths (8 to 45 word pieces), as a sentence-embedding model meets them in search and clustering.
/// The first half calibrates the static model, the second half measures every model.
/// </summary>
internal static class MiniLmSentences
{
    public static readonly string[] Calibration =
    [
        "The quick brown fox jumps over the lazy dog.",
        "How do I reset my password if I no longer have access to my email account?",
        "The central bank raised interest rates by a quarter of a percentage point on Wednesday.",
        "A warm front will bring light rain to the northern valleys by late afternoon.",
        "She finished the marathon in just under four hours despite the heat.",
        "Add two cups of flour, a pinch of salt and mix until the dough is smooth.",
        "The new library opens at nine and closes at eight on weekdays.",
        "Researchers found that the protein folds differently at higher temperatures.",
        "Please restart the server after installing the security update.",
        "Our flight to Lisbon was delayed because of a technical problem with the aircraft.",
        "The museum's collection includes paintings from the seventeenth and eighteenth centuries.",
        "He plays the cello in a small orchestra that rehearses every Thursday evening.",
        "Electric cars are becoming cheaper as battery prices continue to fall.",
        "The committee will publish its final report at the end of the month.",
        "Water the tomatoes early in the morning so the leaves dry before nightfall.",
        "Is there a pharmacy open near the train station on Sunday?",
        "The striker scored twice in the second half to secure the championship.",
        "Compile the project with warnings treated as errors before you submit a pull request.",
        "Volcanic ash closed several airports across the region for two days.",
        "My grandmother taught me how to knit when I was seven years old.",
        "The hotel offers free breakfast and a shuttle to the airport.",
        "Scientists observed a distant galaxy whose light left it thirteen billion years ago.",
        "The contract can be cancelled with thirty days' written notice.",
        "Children under twelve must be accompanied by an adult at all times.",
        "The recipe calls for fresh basil, garlic, pine nuts and parmesan.",
        "Traffic on the bridge will be limited to one lane during the repairs.",
        "The company reported record profits thanks to strong sales in Asia.",
        "Turn left at the second roundabout and the entrance is on your right.",
        "The patient was advised to rest and drink plenty of fluids.",
        "An old lighthouse stands at the end of the rocky peninsula.",
        "The software update improves battery life and fixes several bugs.",
        "They adopted a small dog from the animal shelter last spring.",
    ];

    public static readonly string[] Validation =
    [
        "A fast brown fox leaped over a sleeping dog.",
        "I forgot my password and cannot get into my email anymore; what should I do?",
        "Interest rates went up slightly after the central bank's meeting this week.",
        "Expect showers in the north later today as warmer air moves in.",
        "The runner completed the race in under four hours even though it was very hot.",
        "Mix the flour with salt and water and knead the dough until it is elastic.",
        "The stock market fell sharply after the disappointing employment figures were released.",
        "Proteins can change shape when they are heated above a certain temperature.",
        "After the patch is installed, the machine has to be rebooted.",
        "Our plane to Portugal left three hours late due to a mechanical fault.",
        "The gallery shows works by Dutch and Flemish painters of the Baroque period.",
        "She practises the violin for an hour every morning before school.",
        "Batteries for electric vehicles have become much less expensive in recent years.",
        "The final version of the report is due at the end of this month.",
        "Give the garden a good soak at dawn so the plants do not get mildew.",
        "Where can I find a chemist that is open on a Sunday near the station?",
        "Two late goals won the title for the home team.",
        "Run the unit tests and the linter before opening a merge request.",
        "Flights were cancelled across the country because of the ash cloud from the eruption.",
        "I learned to sew from my grandfather, who was a tailor.",
        "Breakfast is included in the room rate, and there is a free airport bus.",
        "The telescope captured an image of one of the most distant galaxies ever seen.",
        "Either party may terminate the agreement by giving one month's notice in writing.",
        "Young children are not allowed in the pool without a parent.",
        "Pesto is made from basil, garlic, pine nuts, olive oil and cheese.",
        "Only one lane of the bridge will be open while the work is carried out.",
        "Profits reached an all-time high on the back of growing demand in Asian markets.",
        "The doctor told him to stay in bed and drink lots of water.",
        "A white lighthouse overlooks the cliffs at the tip of the headland.",
        "The latest version of the app makes the phone's battery last longer.",
        "We brought home a rescue puppy from the shelter in April.",
        "The orchestra performed a symphony by Brahms to a sold-out concert hall last night.",
    ];
}
