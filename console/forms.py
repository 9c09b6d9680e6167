from django import forms

# Pages that offer saved views, and where each lives; a saved view can only point back at one of them.
SAVED_VIEW_PAGES = {"transactions": "transaction-list", "queue": "queue-list"}


class SavedViewForm(forms.Form):
    """Names the filter of one list page; the query is cleaned of paging and format parameters when saved."""

    page = forms.ChoiceField(choices=[(page, page) for page in SAVED_VIEW_PAGES])
    name = forms.CharField()
    query = forms.CharField(required=False, strip=False)
